// An agency: identifies itself, streams its bets in pipelined batches, resumes after a dropped
// connection from the server's committed position, notifies it is done and asks for its winners.

import { isUtf8 } from "node:buffer";
import { createReadStream } from "node:fs";
import { type Lookup, Rotation } from "../../shared/src/address.js";
import {
  FIELD_COUNT,
  MAX_FIELD_BYTES,
  todayKey,
  validateBet,
  validateBetFields,
} from "../../shared/src/bet.js";
import type { ClientConfig } from "../../shared/src/config.js";
import { CsvReader, type CsvRecord } from "../../shared/src/csv.js";
import {
  ErrorCode,
  errorName,
  type Fault,
  fault,
  isFault,
  QuinielaError,
} from "../../shared/src/errors.js";
import type { Logger } from "../../shared/src/log.js";
import { sleep } from "../../shared/src/net.js";
import { type Frame, MsgType } from "../../shared/src/protocol/frame.js";
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
} from "../../shared/src/protocol/messages.js";
import type { Gate } from "./gate.js";
import { Link, LinkError } from "./link.js";

/** Server faults after which reconnecting cannot help. */
const FATAL_CODES = new Set<number>([
  ErrorCode.UNKNOWN_AGENCY,
  ErrorCode.AUTH_FAILED,
  ErrorCode.COUNT_MISMATCH,
  ErrorCode.AGENCY_FINISHED,
  ErrorCode.UNSUPPORTED_VERSION,
]);

/**
 * Refusals that say nothing about the bets: the server (or its database) could not take the
 * request now. The agency reconnects (possibly to another replica) and resumes from the
 * WELCOME's committed position, exactly as after a dropped connection.
 */
const TRANSIENT_CODES = new Set<number>([ErrorCode.STORAGE_FAILURE, ErrorCode.SHUTTING_DOWN]);

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

interface InFlight {
  first: number;
  count: number;
  startOffset: number;
  endOffset: number;
  reply: Promise<Frame[]>;
}

class Rejected extends Error {
  constructor(
    readonly batch: InFlight,
    readonly fault: Fault,
    readonly index: number,
  ) {
    super(fault.reason);
  }
}

/** The REJECT in a reply, if any; a transient one is thrown as a link failure (reconnect). */
function replyFault(frames: Frame[]): { fault: Fault; index: number } | null {
  const f = frames[0]!;
  if (f.type !== MsgType.REJECT) return null;
  const r = decodeFaultReply(f.payload);
  if (isFault(r)) return { fault: r, index: 0xffff };
  if (TRANSIENT_CODES.has(r.code)) {
    throw new LinkError(
      "server_error",
      fault(r.code as Fault["code"], r.reason),
      `server refused ${errorName(r.code)}: ${r.reason}`,
    );
  }
  return { fault: fault(r.code as Fault["code"], r.reason), index: r.index };
}

export class Agency {
  private link: Link | null = null;
  private readonly ac = new AbortController();
  /** Bets the server acknowledged, and the file offset right after the last acknowledged one. */
  private ackedPos = 0;
  private ackedOffset = 0;
  private inflight: InFlight[] = [];
  private reportedUpTo = 0; // invalid rows before this offset were already reported
  private invalidRows = 0;
  private rejectedBets = 0;
  private total = 0;
  private fileStream: ReturnType<typeof createReadStream> | null = null;
  /** Bets of the file known to the server (set once the whole file went through). */
  private finishedSending = false;
  private readonly rotation: Rotation;
  /** ackedPos when the server last refused our position (see settleOldest). */
  private resyncAt = -1;

  constructor(
    private readonly cfg: ClientConfig,
    private readonly log: Logger,
    private readonly source: "file" | "env",
    private readonly opts: AgencyOptions = {},
  ) {
    this.rotation = new Rotation(cfg.servers, cfg.id, opts.lookup);
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
    let delay = 50;
    let attempt = 0;
    await this.rotation.startRound();
    for (;;) {
      if (this.aborted) throw new QuinielaError("ABORTED", "aborted");
      attempt++;
      const target = this.rotation.current;
      try {
        if (target.error) throw target.error;
        const link = await Link.connect(target.host, target.port);
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
        this.log.debug("connect", "success", {
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
        if (err instanceof LinkError && err.fault && FATAL_CODES.has(err.fault.code)) {
          throw new QuinielaError(errorName(err.fault.code), err.message);
        }
        if (Date.now() - started > this.cfg.retryBudgetMs) {
          throw new QuinielaError(
            "SERVER_UNREACHABLE",
            `server ${this.cfg.serverAddress} unreachable for ${Math.round((Date.now() - started) / 1000)}s: ${(err as Error).message}`,
          );
        }
        this.log.debug("connect", "in_progress", {
          attempt,
          reason: (err as Error).message,
          host: target.host,
          port: target.port,
        });
        if (this.rotation.fail()) {
          await sleep(delay * (0.5 + Math.random()), this.ac.signal);
          delay = Math.min(delay * 2, 2000);
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
        if (this.aborted) throw new QuinielaError("ABORTED", "aborted");
        if (err instanceof LinkError) {
          if (err.fault && FATAL_CODES.has(err.fault.code)) {
            throw new QuinielaError(errorName(err.fault.code), err.message);
          }
          this.log.debug("connection", "in_progress", {
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
    if (bad) throw new QuinielaError("INVALID_BET", `invalid bet in environment: ${bad.reason}`);
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
      this.log.error("apuesta_enviada", "fail", {
        dni: fields[2]!,
        numero: fields[4]!,
        code: errorName(rej.fault.code),
      });
      throw new QuinielaError(errorName(rej.fault.code), `bet rejected: ${rej.fault.reason}`);
    }
    this.total = this.ackedPos = 1;
    this.log.info("apuesta_enviada", "success", { dni: fields[2]!, numero: Number(fields[4]) });
  }

  // ------------------------------------------------------------------ batches from the file

  /** Where to restart reading so that the server's committed position is the next bet sent. */
  private resumePoint(committed: number): { offset: number; skip: number } {
    if (committed < this.ackedPos) {
      throw new QuinielaError(
        "LOST_BETS",
        `server reports ${committed} bets, ${this.ackedPos} were acknowledged`,
      );
    }
    let point = { offset: this.ackedOffset, skip: committed - this.ackedPos };
    for (const b of this.inflight) {
      if (committed >= b.first && committed <= b.first + b.count) {
        point =
          committed === b.first + b.count
            ? { offset: b.endOffset, skip: 0 }
            : { offset: b.startOffset, skip: committed - b.first };
        break;
      }
    }
    this.ackedPos = committed;
    this.inflight = [];
    if (point.skip === 0) this.ackedOffset = point.offset;
    return point;
  }

  private async sendFile(link: Link, committed: number): Promise<void> {
    let { offset, skip } = this.resumePoint(committed);
    for (;;) {
      try {
        await this.streamFrom(link, offset, skip);
        return;
      } catch (err) {
        if (!(err instanceof Rejected)) throw err;
        // The server refused a whole batch (it disagrees with our validation). Its bets are
        // reported and skipped; later batches were refused as out of sequence: resend them.
        const { batch, fault: f, index } = err;
        this.rejectedBets += batch.count;
        this.log.error("apuesta_enviada", "fail", {
          cantidad: batch.count,
          code: errorName(f.code),
          bet_index: index,
          reason: f.reason,
        });
        await Promise.allSettled(this.inflight.map((b) => b.reply));
        this.inflight = [];
        this.ackedOffset = batch.endOffset;
        offset = batch.endOffset;
        skip = 0;
      }
    }
  }

  private async streamFrom(link: Link, startOffset: number, skipValid: number): Promise<void> {
    const cfg = this.cfg;
    const socket = link.socket;
    const builder = new BatchBuilder();
    const csv = new CsvReader(startOffset);
    const today = todayKey();
    let skip = skipValid;
    let pos = this.ackedPos;
    let batchStart = startOffset; // where to re-read to rebuild the batch being filled
    let lastEnd = startOffset;
    let prevValid = true;

    // Rows are handled synchronously; the loop only awaits when the window is full or the
    // socket wants a 'drain'. Writes are corked per file chunk: one writev for many frames.
    const emit = (): void => {
      if (builder.count === 0) return;
      const seq = link.nextSeq();
      const frame = builder.build(MsgType.BATCH, seq, pos);
      const rec: InFlight = {
        first: pos,
        count: builder.count,
        startOffset: batchStart,
        endOffset: lastEnd,
        reply: link.request(seq, frame),
      };
      rec.reply.catch(() => undefined); // observed in settleOldest or superseded by a reconnect
      this.inflight.push(rec);
      if (this.log.enabled("DEBUG")) {
        this.log.debug("apuesta_enviada", "in_progress", { cantidad: rec.count, first: rec.first });
      }
      pos += builder.count;
      builder.reset();
      batchStart = lastEnd;
    };
    const mustWait = (): boolean => this.inflight.length >= cfg.window || socket.writableNeedDrain;
    const wait = async (): Promise<void> => {
      socket.uncork();
      if (socket.writableNeedDrain) await link.drained();
      while (this.inflight.length >= cfg.window) await this.settleOldest();
      socket.cork();
    };
    const take = (r: CsvRecord): void => {
      if (!this.fits(r, builder)) emit(); // a row that does not fit closes the frame
      const fault = this.checkRow(r, builder, today);
      if (fault === "skip") return;
      if (fault) {
        if (r.startOffset >= this.reportedUpTo) {
          this.invalidRows++;
          this.reportedUpTo = r.endOffset;
          this.log.warn("leer_apuesta", "fail", {
            line: r.line,
            code: errorName(fault.code),
            reason: fault.reason,
          });
        }
        return;
      }
      if (skip > 0) {
        builder.undo();
        skip--;
        batchStart = r.endOffset;
        lastEnd = r.endOffset;
        return;
      }
      lastEnd = r.endOffset;
      if (builder.count >= cfg.batchMaxAmount) emit();
    };

    const stream = createReadStream(cfg.dataFile, {
      start: startOffset,
      highWaterMark: this.opts.readChunkBytes ?? 256 * 1024,
    });
    this.fileStream = stream;
    socket.cork();
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (this.aborted) return;
        const valid = isUtf8(chunk);
        csv.feed(chunk);
        this.chunkUtf8 = valid && prevValid;
        prevValid = valid;
        for (let r = csv.next(); r; r = csv.next()) {
          take(r);
          if (mustWait()) await wait();
        }
        socket.uncork();
        socket.cork();
      }
      const last = csv.end();
      if (last) {
        this.chunkUtf8 = prevValid;
        take(last);
      }
      emit();
      socket.uncork();
      while (this.inflight.length > 0) await this.settleOldest();
      this.finishedSending = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code && !(err instanceof LinkError)) {
        throw new QuinielaError(
          "DATA_FILE",
          `cannot read ${cfg.dataFile}: ${(err as Error).message}`,
        );
      }
      throw err;
    } finally {
      if (socket.writableCorked) socket.uncork();
      stream.destroy();
      this.fileStream = null;
    }
  }

  private chunkUtf8 = true;

  private fits(r: CsvRecord, builder: BatchBuilder): boolean {
    if (builder.count === 0 || r.fieldCount !== FIELD_COUNT) return true;
    let bytes = 0;
    for (let f = 0; f < FIELD_COUNT; f++) bytes += r.ends[f]! - r.starts[f]!;
    return builder.sizeWith(bytes) <= 8192;
  }

  /** Adds the row to the builder and validates it there; a Fault (row to undo) or null. */
  private checkRow(r: CsvRecord, builder: BatchBuilder, today: number): Fault | null | "skip" {
    if (r.fieldCount !== FIELD_COUNT) {
      if (r.fieldCount === 1 && r.ends[0]! === r.starts[0]!) return "skip"; // blank line
      return fault(ErrorCode.MALFORMED, `expected ${FIELD_COUNT} fields, found ${r.fieldCount}`);
    }
    for (let f = 0; f < FIELD_COUNT; f++) {
      if (r.ends[f]! - r.starts[f]! > MAX_FIELD_BYTES) {
        return fault(ErrorCode.INVALID_NAME, `field ${f + 1} longer than ${MAX_FIELD_BYTES} bytes`);
      }
    }
    builder.add(r.bufs, r.starts, r.ends);
    const v = validateBetFields(builder.data, builder.lastStarts, builder.lastEnds, 0, today);
    if (typeof v !== "number") {
      builder.undo();
      return v;
    }
    if (!this.chunkUtf8) {
      for (let f = 0; f < 2; f++) {
        if (!isUtf8(builder.data.subarray(builder.lastStarts[f]!, builder.lastEnds[f]!))) {
          builder.undo();
          return fault(ErrorCode.INVALID_NAME, "name is not valid UTF-8");
        }
      }
    }
    return null;
  }

  /** Waits for the oldest batch's reply and records the acknowledgement. */
  private async settleOldest(): Promise<void> {
    const b = this.inflight[0]!;
    const frames = await b.reply;
    const rej = replyFault(frames);
    if (rej?.fault.code === ErrorCode.OUT_OF_SEQUENCE) {
      // The server's position is not ours: with replicas, a batch whose ACK was lost may have
      // been committed by another replica meanwhile. Not a data error: resynchronise from a
      // WELCOME. Twice at the same position would loop: that is a bug, stop.
      if (this.resyncAt === this.ackedPos) {
        throw new QuinielaError("OUT_OF_SEQUENCE", `server refuses position ${b.first} again`);
      }
      this.resyncAt = this.ackedPos;
      throw new LinkError("server_error", rej.fault, `position ${b.first} refused: resync`);
    }
    if (rej) throw new Rejected(b, rej.fault, rej.index);
    const ack = decodeAck(frames[0]!.payload);
    if (isFault(ack) || ack !== b.first + b.count) {
      throw new LinkError("protocol", null, `bad ACK for batch at ${b.first}`);
    }
    this.inflight.shift();
    this.ackedPos = ack;
    this.ackedOffset = b.endOffset;
    this.total = ack;
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
    this.log.debug("notificar_fin", "success", { apuestas: this.ackedPos });
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
    const hadFile = this.fileStream !== null;
    this.link?.destroy();
    this.fileStream?.destroy();
    return { hadSocket, hadFile };
  }
}
