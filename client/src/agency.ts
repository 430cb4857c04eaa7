// An agency: identifies itself, streams its bets in pipelined batches, resumes after a dropped
// connection from the server's committed position, notifies it is done and asks for its winners.

import { Action } from "../../shared/src/actions.js";
import { type Lookup, Rotation } from "../../shared/src/address.js";
import { todayKey, validateBet } from "../../shared/src/bet.js";
import type { ClientConfig } from "../../shared/src/config.js";
import {
  ErrorCode,
  errorName,
  FatalCode,
  type Fault,
  fault,
  isFault,
  type PeerFault,
  QuinielaError,
} from "../../shared/src/errors.js";
import type { Logger } from "../../shared/src/log.js";
import { Backoff, sleep } from "../../shared/src/net.js";
import { type Frame, MAX_FRAME, MsgType } from "../../shared/src/protocol/frame.js";
import {
  AgencyState,
  BatchBuilder,
  decodeAck,
  decodeFaultReply,
  decodeWelcome,
  decodeWinners,
  encodeDone,
  encodeHello,
  encodeWinnersRequest,
  NO_INDEX,
} from "../../shared/src/protocol/messages.js";
import type { Gate } from "./gate.js";
import { Link, LinkError, type PostedReply } from "./link.js";
import { BetScanner, Step } from "./scan.js";
import { ClientTls } from "./tls.js";

/** Server faults after which reconnecting cannot help. */
const FATAL_CODES = new Set<number>([
  ErrorCode.UNKNOWN_AGENCY,
  ErrorCode.AUTH_FAILED,
  ErrorCode.COUNT_MISMATCH,
  ErrorCode.AGENCY_FINISHED,
  ErrorCode.UNSUPPORTED_VERSION,
  ErrorCode.TLS_REQUIRED,
]);

/**
 * Refusals that say nothing about the bets: the server (or its database) could not take the
 * request now. The agency reconnects (possibly to another replica) and resumes from the
 * WELCOME's committed position, exactly as after a dropped connection.
 */
const TRANSIENT_CODES = new Set<number>([ErrorCode.STORAGE_FAILURE, ErrorCode.SHUTTING_DOWN]);

/** The error to stop with when reconnecting cannot help (a fatal server fault, a TLS refusal). */
function fatalOf(err: unknown): QuinielaError | null {
  if (!(err instanceof LinkError)) return null;
  if (err.kind === "tls") return new QuinielaError(FatalCode.TLS_FAILED, `TLS: ${err.message}`);
  if (err.fault && FATAL_CODES.has(err.fault.code)) {
    return new QuinielaError(errorName(err.fault.code), err.message);
  }
  return null;
}

/** A live server answers HELLO at once; one that does not is treated as down (next replica). */
const WELCOME_TIMEOUT_MS = 15_000;

export interface AgencyOptions {
  /** Limits how many agencies of the process stream their files at the same time. */
  gate?: Gate;
  /** Bytes read from the data file at a time. */
  readChunkBytes?: number;
  /** Name resolution for the server addresses (tests inject one). */
  lookup?: Lookup;
}

export interface AgencyResult {
  sent: number;
  invalidRows: number;
  rejectedBets: number;
  winners: string[];
}

/** A batch sent and not yet answered: its positions and where its rows are in the file. */
export interface InFlight {
  first: number;
  count: number;
  /** File offsets (and line numbers) of the batch's rows: re-read from there to resend it. */
  startOffset: number;
  startLine: number;
  endOffset: number;
  endLine: number;
}

/** Where to read the file from after a (re)connection. */
interface ResumePoint {
  offset: number;
  line: number;
  /** Valid rows there that the server already has. */
  skip: number;
}

class Rejected extends Error {
  constructor(
    readonly batch: InFlight,
    readonly fault: PeerFault,
    readonly index: number,
  ) {
    super(fault.reason);
  }
}

/** The REJECT in a reply, if any; a transient one is thrown as a link failure (reconnect). */
function replyFault(frames: Frame[]): { fault: PeerFault; index: number } | null {
  const f = frames[0]!;
  if (f.type !== MsgType.REJECT) return null;
  const r = decodeFaultReply(f.payload);
  if (isFault(r)) return { fault: r, index: NO_INDEX };
  if (TRANSIENT_CODES.has(r.code)) {
    throw new LinkError(
      "server_error",
      fault(r.code, r.reason),
      `server refused ${errorName(r.code)}: ${r.reason}`,
    );
  }
  return { fault: fault(r.code, r.reason), index: r.index };
}

export class Agency {
  private link: Link | null = null;
  private readonly ac = new AbortController();
  /** Bets the server acknowledged, and the file offset (line) right after the last acknowledged one. */
  private ackedPos = 0;
  private ackedOffset = 0;
  private ackedLine = 1;
  private inflight: InFlight[] = [];
  private reportedUpTo = 0; // invalid rows before this offset were already reported
  private invalidRows = 0;
  private rejectedBets = 0;
  private total = 0;
  /** The data file while it is being sent; its read buffer is reused for every (re)send. */
  private scanner: BetScanner | null = null;
  /**
   * Batch frames are built in window + 1 slots of 8 kB used in turn, not in a new ArrayBuffer
   * each (3.5 % of the agency's CPU at 1M bets, more in cache misses). A slot is written again
   * only window + 1 batches later: at most `window` batches are unacknowledged when one is
   * built, so its earlier frame was acknowledged, hence written out of the socket.
   */
  private frames = Buffer.alloc(0);
  private frameSlot = 0;
  /** Bets of the file known to the server (set once the whole file went through). */
  private finishedSending = false;
  private readonly rotation: Rotation;
  private readonly tls: ClientTls | null;
  /** ackedPos when the server last refused our position (see settleOldest). */
  private resyncAt = -1;

  constructor(
    private readonly cfg: ClientConfig,
    private readonly log: Logger,
    private readonly source: "file" | "env",
    private readonly opts: AgencyOptions = {},
  ) {
    this.rotation = new Rotation(cfg.servers, cfg.id, opts.lookup);
    this.tls = ClientTls.fromConfig(cfg);
  }

  private get aborted(): boolean {
    return this.ac.signal.aborted;
  }

  // ------------------------------------------------------------------ connection & retry

  /**
   * Connects and identifies, retrying quietly within the budget: a failed entry of the address
   * list is followed at once by the next one; after a whole round of failures, backoff with
   * jitter (the list is resolved again for each round, so replicas that come and go are seen).
   */
  private async connect(): Promise<{ link: Link; committed: number; state: number }> {
    const started = Date.now();
    const backoff = new Backoff();
    let attempt = 0;
    await this.rotation.startRound();
    for (;;) {
      if (this.aborted) throw new QuinielaError(FatalCode.ABORTED, "aborted");
      attempt++;
      const target = this.rotation.current;
      try {
        if (target.error) throw target.error;
        const link = await Link.connect(target.host, target.port, {
          tls: this.tls,
          entry: target.entry,
        });
        this.link = link;
        const seq = link.nextSeq();
        const timer = setTimeout(
          () => link.socket.destroy(new Error(`no WELCOME within ${WELCOME_TIMEOUT_MS} ms`)),
          WELCOME_TIMEOUT_MS,
        );
        const frames = await link
          .request(seq, encodeHello(seq, { agency: this.cfg.id, secret: this.cfg.secret }))
          .finally(() => clearTimeout(timer));
        const w = decodeWelcome(frames[0]!.payload);
        if (frames[0]!.type !== MsgType.WELCOME || isFault(w)) {
          replyFault(frames); // a transient REJECT says why
          throw new LinkError("protocol", null, "expected WELCOME");
        }
        this.log.debug(Action.CONNECT, "success", {
          attempt,
          committed: w.committed,
          state: w.state,
          host: target.host,
          port: target.port,
        });
        return { link, committed: w.committed, state: w.state };
      } catch (err) {
        this.link?.destroy();
        this.link = null;
        const stop = fatalOf(err);
        if (stop) throw stop;
        if (Date.now() - started > this.cfg.retryBudgetMs) {
          throw new QuinielaError(
            FatalCode.SERVER_UNREACHABLE,
            `server ${this.cfg.serverAddress} unreachable for ${Math.round((Date.now() - started) / 1000)}s: ${(err as Error).message}`,
          );
        }
        this.log.debug(Action.CONNECT, "in_progress", {
          attempt,
          reason: (err as Error).message,
          host: target.host,
          port: target.port,
        });
        if (this.rotation.fail()) {
          await backoff.wait(this.ac.signal);
          await this.rotation.startRound();
        }
      }
    }
  }

  /** Runs the whole agency; retries the current step after a dropped connection. */
  async run(): Promise<AgencyResult> {
    if (this.cfg.startDelayMs > 0) await sleep(this.cfg.startDelayMs, this.ac.signal);
    // The gate is held from the first connection until DONE is acknowledged: an agency waiting
    // for its turn holds no connection (no idle timeout, no socket), one waiting for the draw
    // holds no file and no send buffers.
    let release = this.opts.gate ? await this.opts.gate.acquire() : null;
    const leaveGate = (): void => {
      release?.();
      release = null;
    };
    try {
      return await this.session(leaveGate);
    } finally {
      leaveGate();
    }
  }

  private async session(leaveGate: () => void): Promise<AgencyResult> {
    for (;;) {
      const { link, committed, state } = await this.connect();
      try {
        if (state === AgencyState.OPEN) {
          // Everything may already be sent and acknowledged (the link dropped before DONE's
          // ACK): then only DONE is repeated.
          if (!this.finishedSending) {
            if (this.source === "env") await this.sendEnvBet(link, committed);
            else await this.sendFile(link, committed);
          }
          await this.finish(link);
        }
        leaveGate();
        const winners = await this.askWinners(link);
        await link.close();
        this.link = null;
        return {
          sent: this.total,
          invalidRows: this.invalidRows,
          rejectedBets: this.rejectedBets,
          winners,
        };
      } catch (err) {
        link.destroy();
        this.link = null;
        if (this.aborted) throw new QuinielaError(FatalCode.ABORTED, "aborted");
        if (err instanceof LinkError) {
          const stop = fatalOf(err);
          if (stop) throw stop;
          this.log.debug(Action.CONNECTION, "in_progress", {
            reason: err.message,
            resume_from: this.ackedPos,
          });
          this.rotation.fail(); // this replica failed us: the next entry is tried first
          continue; // reconnect and resume
        }
        throw err;
      }
    }
  }

  // ------------------------------------------------------------------ single bet (env)

  private async sendEnvBet(link: Link, committed: number): Promise<void> {
    const env = process.env;
    const fields = [env.NOMBRE, env.APELLIDO, env.DOCUMENTO, env.NACIMIENTO, env.NUMERO].map((v) =>
      (v ?? "").trim(),
    );
    const bad = validateBet(fields);
    if (bad)
      throw new QuinielaError(FatalCode.INVALID_BET, `invalid bet in environment: ${bad.reason}`);
    if (committed >= 1) {
      // stored before a dropped connection: do not store it twice
      this.total = this.ackedPos = 1;
      return;
    }
    const b = new BatchBuilder();
    b.addStrings(fields);
    const seq = link.nextSeq();
    const frames = await link.request(seq, b.build(MsgType.BET, seq, 0));
    const rej = replyFault(frames);
    if (rej) {
      this.rejectedBets++;
      this.log.error(Action.APUESTA_ENVIADA, "fail", {
        dni: fields[2]!,
        numero: fields[4]!,
        code: errorName(rej.fault.code),
      });
      throw new QuinielaError(errorName(rej.fault.code), `bet rejected: ${rej.fault.reason}`);
    }
    this.total = this.ackedPos = 1;
    this.log.info(Action.APUESTA_ENVIADA, "success", {
      dni: fields[2]!,
      numero: Number(fields[4]),
    });
  }

  // ------------------------------------------------------------------ batches from the file

  /** Where to restart reading so that the server's committed position is the next bet sent. */
  private resumePoint(committed: number): ResumePoint {
    if (committed < this.ackedPos) {
      throw new QuinielaError(
        FatalCode.LOST_BETS,
        `server reports ${committed} bets, ${this.ackedPos} were acknowledged`,
      );
    }
    let point: ResumePoint = {
      offset: this.ackedOffset,
      line: this.ackedLine,
      skip: committed - this.ackedPos,
    };
    for (const b of this.inflight) {
      if (committed >= b.first && committed <= b.first + b.count) {
        point =
          committed === b.first + b.count
            ? { offset: b.endOffset, line: b.endLine, skip: 0 }
            : { offset: b.startOffset, line: b.startLine, skip: committed - b.first };
        break;
      }
    }
    this.ackedPos = committed;
    this.inflight = [];
    if (point.skip === 0) {
      this.ackedOffset = point.offset;
      this.ackedLine = point.line;
    }
    return point;
  }

  private async sendFile(link: Link, committed: number): Promise<void> {
    let from = this.resumePoint(committed);
    for (;;) {
      try {
        await this.streamFrom(link, from);
        return;
      } catch (err) {
        if (!(err instanceof Rejected)) throw err;
        // The server refused a whole batch (it disagrees with our validation). Its bets are
        // reported and skipped; later batches were refused as out of sequence: resend them.
        const { batch, fault: f, index } = err;
        this.rejectedBets += batch.count;
        this.log.error(Action.APUESTA_ENVIADA, "fail", {
          cantidad: batch.count,
          code: errorName(f.code),
          bet_index: index,
          reason: f.reason,
        });
        await this.dropReplies(link, this.inflight.length - 1);
        this.inflight = [];
        this.ackedOffset = batch.endOffset;
        this.ackedLine = batch.endLine;
        from = { offset: batch.endOffset, line: batch.endLine, skip: 0 };
      }
    }
  }

  private async streamFrom(link: Link, from: ResumePoint): Promise<void> {
    const cfg = this.cfg;
    const socket = link.socket;
    // One scanner (and read buffer) per agency, kept across reconnections until the file is sent.
    this.scanner ??= new BetScanner(cfg.batchMaxAmount, this.opts.readChunkBytes ?? 256 * 1024);
    const sc = this.scanner;
    const builder = sc.builder;
    let pos = this.ackedPos;

    // Rows are handled synchronously by the scanner; the loop only awaits to read the file, when
    // the window is full or when the socket wants a 'drain'. Writes are corked per read: one
    // writev for many frames.
    const emit = (): void => {
      if (builder.count === 0) return;
      const seq = link.nextSeq();
      const slots = cfg.window + 1;
      if (this.frames.length !== slots * MAX_FRAME) {
        this.frames = Buffer.allocUnsafeSlow(slots * MAX_FRAME);
      }
      const at = this.frameSlot * MAX_FRAME;
      this.frameSlot = (this.frameSlot + 1) % slots;
      const frame = this.frames.subarray(
        at,
        at + builder.buildInto(this.frames, at, MsgType.BATCH, seq, pos),
      );
      const rec: InFlight = {
        first: pos,
        count: builder.count,
        startOffset: sc.batchStart,
        startLine: sc.batchStartLine,
        endOffset: sc.lastEnd,
        endLine: sc.lastEndLine,
      };
      link.post(seq, frame); // its reply is taken in settleOldest
      this.inflight.push(rec);
      if (this.log.enabled("DEBUG")) {
        this.log.debug(Action.APUESTA_ENVIADA, "in_progress", {
          cantidad: rec.count,
          first: rec.first,
        });
      }
      pos += builder.count;
      sc.startBatch();
    };

    socket.cork();
    try {
      await sc.open(cfg.dataFile, from, todayKey());
      if (this.aborted) return;
      for (;;) {
        const s = sc.step();
        if (s === Step.BATCH) {
          emit();
          if (this.inflight.length >= cfg.window || socket.writableNeedDrain) {
            socket.uncork();
            if (socket.writableNeedDrain) await link.drained();
            while (this.inflight.length >= cfg.window) await this.settleOldest(link);
            // and the replies already here: the window refills by several batches, which then
            // go out in one write (not one system call per frame, 20 % of the CPU at 1M bets)
            for (let r = link.nextReply(); r !== null; r = link.nextReply()) this.settle(r);
            socket.cork();
          }
        } else if (s === Step.INVALID) {
          if (sc.invalidStart >= this.reportedUpTo) {
            this.invalidRows++;
            this.reportedUpTo = sc.invalidEnd;
            this.log.warn(Action.LEER_APUESTA, "fail", {
              line: sc.invalidLine,
              code: errorName(sc.invalid!.code),
              reason: sc.invalid!.reason,
            });
          }
        } else if (s === Step.NEED_DATA) {
          socket.uncork();
          socket.cork();
          await sc.fill();
          if (this.aborted) return;
        } else {
          break;
        }
      }
      emit();
      socket.uncork();
      sc.close();
      while (this.inflight.length > 0) await this.settleOldest(link);
      this.finishedSending = true;
      this.scanner = null; // the read buffer is not needed any more
      this.frames = Buffer.alloc(0);
    } catch (err) {
      if (
        (err as NodeJS.ErrnoException).code &&
        !(err instanceof LinkError) &&
        !(err instanceof QuinielaError)
      ) {
        throw new QuinielaError(
          FatalCode.DATA_FILE,
          `cannot read ${cfg.dataFile}: ${(err as Error).message}`,
        );
      }
      throw err;
    } finally {
      if (socket.writableCorked) socket.uncork();
      sc.close();
    }
  }

  /** Waits for the oldest batch's reply and records the acknowledgement. */
  private async settleOldest(link: Link): Promise<void> {
    let r = link.nextReply();
    while (r === null) {
      await link.replied();
      r = link.nextReply();
    }
    this.settle(r);
  }

  /** Records the oldest batch's reply (an ACK, or why it was refused). */
  private settle(r: PostedReply): void {
    const b = this.inflight[0]!;
    let ack: number | Fault = r as number;
    if (typeof r !== "number") {
      const rej = replyFault(r);
      if (rej?.fault.code === ErrorCode.OUT_OF_SEQUENCE) {
        // The server's position is not ours: with replicas, a batch whose ACK was lost may have
        // been committed by another replica meanwhile. Not a data error: resynchronise from a
        // WELCOME. Twice at the same position would loop: that is a bug, stop.
        if (this.resyncAt === this.ackedPos) {
          throw new QuinielaError(
            errorName(ErrorCode.OUT_OF_SEQUENCE),
            `server refuses position ${b.first} again`,
          );
        }
        this.resyncAt = this.ackedPos;
        throw new LinkError("server_error", rej.fault, `position ${b.first} refused: resync`);
      }
      if (rej) throw new Rejected(b, rej.fault, rej.index);
      ack = decodeAck(r[0]!.payload);
    }
    if (isFault(ack) || ack !== b.first + b.count) {
      throw new LinkError("protocol", null, `bad ACK for batch at ${b.first}`);
    }
    this.inflight.shift();
    this.ackedPos = ack;
    this.ackedOffset = b.endOffset;
    this.ackedLine = b.endLine;
    this.total = ack;
  }

  /** Waits for and drops the replies of `n` batches; a broken link ends the wait (and fails next). */
  private async dropReplies(link: Link, n: number): Promise<void> {
    try {
      for (let i = 0; i < n; ) {
        if (link.nextReply() !== null) i++;
        else await link.replied();
      }
    } catch {
      // the link broke: the next request on it fails and the session reconnects
    }
  }

  // ------------------------------------------------------------------ done & winners

  private async finish(link: Link): Promise<void> {
    this.finishedSending = true;
    const seq = link.nextSeq();
    const frames = await link.request(seq, encodeDone(seq, this.ackedPos));
    const rej = replyFault(frames);
    if (rej)
      throw new QuinielaError(errorName(rej.fault.code), `DONE refused: ${rej.fault.reason}`);
    this.total = this.ackedPos;
    this.log.debug(Action.NOTIFICAR_FIN, "success", { apuestas: this.ackedPos });
  }

  private async askWinners(link: Link): Promise<string[]> {
    const seq = link.nextSeq();
    const frames = await link.request(seq, encodeWinnersRequest(seq, true));
    const out: string[] = [];
    replyFault(frames); // a transient refusal: reconnect and ask again
    for (const f of frames) {
      if (f.type !== MsgType.WINNERS) throw new LinkError("protocol", null, "expected WINNERS");
      const w = decodeWinners(f.payload);
      if (isFault(w)) throw new LinkError("protocol", w, w.reason);
      out.push(...w);
    }
    return out;
  }

  /** SIGTERM: stop everything now; the caller logs and exits. */
  abort(): { hadSocket: boolean; hadFile: boolean } {
    this.ac.abort();
    const hadSocket = this.link !== null;
    const hadFile = this.scanner?.isOpen === true;
    this.link?.destroy();
    this.scanner?.close();
    return { hadSocket, hadFile };
  }
}
