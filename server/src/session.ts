// One agency connection speaking the binary protocol. Frames are decoded as bytes arrive; each
// request gets exactly one reply (WINNERS may span several frames), always in request order:
// replies wait in `queue` until every earlier one is ready (a BATCH ack waits for its fsync).
// Backpressure both ways: reading pauses while the socket cannot take more replies or while too
// many requests are unanswered, so a client that never reads cannot make the server buffer.

import type { Socket } from "node:net";
import { Action } from "../../shared/src/actions.js";
import { F_DOCUMENT, F_NUMBER, todayKey } from "../../shared/src/bet.js";
import {
  ErrorCode,
  type ErrorCodeValue,
  errorName,
  type Fault,
  isFault,
} from "../../shared/src/errors.js";
import type { Logger } from "../../shared/src/log.js";
import { endThenDestroy } from "../../shared/src/net.js";
import { FrameDecoder } from "../../shared/src/protocol/decoder.js";
import { type Frame, MsgType } from "../../shared/src/protocol/frame.js";
import {
  BATCH_PREFIX,
  type BatchView,
  decodeBatch,
  decodeDone,
  decodeHello,
  decodeWinnersRequest,
  encodeAck,
  encodeFaultReply,
  encodeNotReady,
  encodeWelcome,
  encodeWinners,
  NO_INDEX,
} from "../../shared/src/protocol/messages.js";
import type { Lottery } from "./lottery.js";

export interface SessionLimits {
  idleTimeoutMs: number;
  /** No HELLO by then: the connection is closed. */
  helloTimeoutMs: number;
  /** A frame begun but not completed by then (while we read): the connection is closed. */
  frameTimeoutMs: number;
  /** Unanswered requests after which reading pauses. */
  maxInFlight: number;
}

interface Slot {
  frames: Buffer[] | null; // null: not ready yet
}

export class AgencySession {
  private readonly decoder = new FrameDecoder();
  private agency = 0;
  private queue: Slot[] = [];
  private queueHead = 0;
  private closed = false;
  private waitingForDraw = false;
  private flushScheduled = false;
  private partialSince = 0;
  private pausedBy = new Set<"inflight" | "drain">();
  private readonly drawCancels = new Set<() => void>();
  private readonly helloTimer: NodeJS.Timeout;

  constructor(
    private readonly socket: Socket,
    private readonly ip: string,
    private readonly lottery: Lottery,
    private readonly log: Logger,
    private readonly limits: SessionLimits,
    private readonly onFatal: (err: Error) => void,
    /** What the transport proved about the peer (a TLS client certificate): checked at HELLO. */
    private readonly vouch?: (agency: number) => Fault | null,
  ) {
    socket.setTimeout(limits.idleTimeoutMs);
    socket.on("timeout", () => this.onTimeout());
    socket.on("drain", () => this.resume("drain"));
    this.helloTimer = setTimeout(() => {
      if (this.agency === 0) this.fail(ErrorCode.IDLE_TIMEOUT, "no HELLO in time");
    }, limits.helloTimeoutMs);
    this.helloTimer.unref();
  }

  get label(): string {
    return this.agency ? `agency ${this.agency}` : "unidentified";
  }

  onData(chunk: Buffer): void {
    if (this.closed) return;
    this.decoder.push(chunk);
    for (;;) {
      const f = this.decoder.next();
      if (f === null) break;
      if (isFault(f)) {
        this.fail(f.code, f.reason);
        return;
      }
      this.handle(f as Frame);
      if (this.closed) return;
    }
    // Read timeout: a frame that was started must be completed in time (a peer trickling
    // bytes would otherwise keep resetting the idle timer forever).
    if (this.decoder.pending === 0) this.partialSince = 0;
    else if (this.partialSince === 0) this.partialSince = Date.now();
  }

  /** Called about once a second by the server. */
  checkDeadlines(now: number): void {
    if (this.closed || this.pausedBy.size > 0) return;
    if (this.partialSince !== 0 && now - this.partialSince > this.limits.frameTimeoutMs) {
      this.fail(ErrorCode.IDLE_TIMEOUT, "frame not completed in time");
    }
  }

  onEnd(): void {
    const f = this.decoder.end();
    if (f && !this.closed) {
      this.log.warn(Action.RECEIVE_MESSAGE, "fail", {
        ip: this.ip,
        code: errorName(f.code),
        reason: f.reason,
      });
    }
  }

  onClose(): void {
    this.closed = true;
    clearTimeout(this.helloTimer);
    this.cancelDraws();
    if (this.agency) this.lottery.unbind(this.agency, this);
  }

  /** Another connection identified as our agency: this one is stale. */
  replaced(): void {
    this.fail(ErrorCode.REPLACED, "a newer connection of this agency took over");
  }

  private handle(f: Frame): void {
    switch (f.type) {
      case MsgType.HELLO:
        this.onHello(f);
        return;
      case MsgType.BET:
      case MsgType.BATCH:
        this.onBatch(f);
        return;
      case MsgType.DONE:
        this.onDone(f);
        return;
      case MsgType.WINNERS_REQUEST:
        this.onWinnersRequest(f);
        return;
      default:
        this.fail(ErrorCode.UNKNOWN_TYPE, `unexpected message type ${f.type}`, f.seq);
        return;
    }
  }

  private onHello(f: Frame): void {
    const h = decodeHello(f.payload);
    if (isFault(h)) {
      this.fail(h.code, h.reason, f.seq);
      return;
    }
    if (this.agency !== 0) {
      this.fail(ErrorCode.ALREADY_IDENTIFIED, "HELLO sent twice", f.seq);
      return;
    }
    const denied = this.vouch?.(h.agency) ?? this.lottery.authenticate(h.agency, h.secret);
    if (denied) {
      this.fail(denied.code, denied.reason, f.seq);
      return;
    }
    this.agency = h.agency;
    clearTimeout(this.helloTimer);
    const slot = this.reserve();
    this.lottery.bind(h.agency, this).then(
      (w) => {
        if (isFault(w)) {
          this.failAfterReplies(w, f.seq);
          return;
        }
        this.log.debug(Action.AGENCY_CONNECTED, "success", {
          ip: this.ip,
          agency: h.agency,
          committed: w.committed,
        });
        this.ready(slot, [encodeWelcome(f.seq, w)]);
      },
      (err: unknown) => this.onFatal(err as Error),
    );
  }

  private requireAgency(seq: number): boolean {
    if (this.agency !== 0) return true;
    this.fail(ErrorCode.NOT_IDENTIFIED, "HELLO must come first", seq);
    return false;
  }

  /**
   * The decoded payload of a request that needs an identified agency; null when the request
   * failed the connection instead (no HELLO yet, or a malformed payload).
   */
  private decodeRequest<T>(f: Frame, decode: (p: Buffer) => T | Fault): T | null {
    if (!this.requireAgency(f.seq)) return null;
    const v = decode(f.payload);
    if (isFault(v)) {
      this.fail(v.code, v.reason, f.seq);
      return null;
    }
    return v;
  }

  private onBatch(f: Frame): void {
    if (!this.requireAgency(f.seq)) return;
    const p = f.payload;
    const count = p.length >= BATCH_PREFIX ? p.readUInt16BE(4) : 0;
    // BET (exercise 5) logs the bet's document and number: it is decoded here as well.
    let single: { document: string; number: string } | null = null;
    if (f.type === MsgType.BET) {
      const view = decodeBatch(p);
      if (isFault(view)) {
        this.rejectBatch(f.seq, view, count, -1);
        return;
      }
      if (view.count !== 1) {
        this.fail(ErrorCode.MALFORMED, "BET must carry exactly one bet", f.seq);
        return;
      }
      single = { document: this.field(view, F_DOCUMENT), number: this.field(view, F_NUMBER) };
    }
    const first = p.length >= BATCH_PREFIX ? p.readUInt32BE(0) : 0;
    const slot = this.reserve();
    // Validated, encoded and position-checked synchronously: the payload is not kept.
    const refused = this.lottery.ingest(
      { agency: this.agency, first, count, payload: p },
      todayKey(),
      (r) => {
        if (r) {
          this.failAfterReplies(r, f.seq);
          return;
        }
        if (single) {
          this.log.info(Action.APUESTA_ALMACENADA, "success", {
            dni: single.document,
            numero: Number(single.number),
          });
        } else {
          this.log.info(Action.APUESTA_RECIBIDA, "success", { cantidad: count });
        }
        this.ready(slot, [encodeAck(f.seq, first + count)]);
      },
    );
    if (refused) this.rejectInSlot(slot, f.seq, refused.fault, count, refused.index);
  }

  /**
   * The store could not take a request (storage failure, or another replica advanced the
   * agency): replies already earned go out, then ERROR ends the connection, and the agency
   * reconnects and resumes from the committed position its next WELCOME tells.
   */
  private failAfterReplies(r: Fault, seq: number): void {
    if (this.closed) return;
    this.flushQueue();
    this.fail(r.code, r.reason, seq);
  }

  private field(view: BatchView, f: number): string {
    return view.buf.toString("utf8", view.starts[f]!, view.ends[f]!);
  }

  private rejectBatch(seq: number, fault: Fault, count: number, index: number): void {
    this.rejectInSlot(this.reserve(), seq, fault, count, index);
  }

  private rejectInSlot(slot: Slot, seq: number, fault: Fault, count: number, index: number): void {
    this.log.info(Action.APUESTA_RECIBIDA, "fail", {
      cantidad: count,
      agency: this.agency,
      code: errorName(fault.code),
      ...(index >= 0 ? { bet_index: index } : {}),
      reason: fault.reason,
    });
    this.ready(slot, [
      encodeFaultReply(
        MsgType.REJECT,
        seq,
        fault.code,
        fault.reason,
        index >= 0 ? index : NO_INDEX,
      ),
    ]);
  }

  private onDone(f: Frame): void {
    const total = this.decodeRequest(f, decodeDone);
    if (total === null) return;
    const slot = this.reserve();
    this.lottery.finish(this.agency, total).then(
      (denied) => {
        if (denied?.code === ErrorCode.STORAGE_FAILURE) {
          this.failAfterReplies(denied, f.seq);
        } else if (denied) {
          this.log.warn(Action.AGENCY_DONE, "fail", {
            agency: this.agency,
            code: errorName(denied.code),
          });
          this.ready(slot, [encodeFaultReply(MsgType.REJECT, f.seq, denied.code, denied.reason)]);
        } else {
          this.ready(slot, [encodeAck(f.seq, total)]);
        }
      },
      (err: unknown) => this.onFatal(err as Error),
    );
  }

  private cancelDraws(): void {
    for (const c of this.drawCancels) c();
    this.drawCancels.clear();
  }

  private onWinnersRequest(f: Frame): void {
    const req = this.decodeRequest(f, decodeWinnersRequest);
    if (req === null) return;
    const slot = this.reserve();
    const agency = this.agency;
    const answer = () => {
      this.lottery.winnersOf(agency).then(
        (w) => {
          if (isFault(w)) {
            this.failAfterReplies(w, f.seq);
            return;
          }
          this.log.debug(Action.CONSULTA_GANADORES, "success", {
            agency,
            cant_ganadores: w.length,
          });
          this.ready(slot, encodeWinners(f.seq, w));
        },
        (err: unknown) => this.onFatal(err as Error),
      );
    };
    if (this.lottery.drawn) {
      answer();
      return;
    }
    if (!req.wait) {
      this.ready(slot, [encodeNotReady(f.seq)]);
      return;
    }
    // Held until the draw: no polling. The idle timeout does not apply while we owe a reply.
    this.waitingForDraw = true;
    // Every held request has its own listener, and all are cancelled if the connection closes.
    const cancel = this.lottery.onDraw(() => {
      this.drawCancels.delete(cancel);
      this.waitingForDraw = this.drawCancels.size > 0;
      answer();
    });
    if (!this.lottery.drawn) {
      this.drawCancels.add(cancel);
      // With replicas, a draw left unfinished by a replica that died can be taken over here:
      // the lottery asks the store once (nothing happens unless every agency has finished).
      this.lottery.maybeDraw();
    }
  }

  // ---- reply queue

  private reserve(): Slot {
    const slot: Slot = { frames: null };
    this.queue.push(slot);
    if (this.queue.length - this.queueHead >= this.limits.maxInFlight) this.pause("inflight");
    return slot;
  }

  private ready(slot: Slot, frames: Buffer[]): void {
    slot.frames = frames;
    // Many replies become ready together (one fsync acknowledges many batches): write them
    // to the socket in one go instead of one syscall each.
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => {
        this.flushScheduled = false;
        this.flushQueue();
      });
    }
  }

  private flushQueue(): void {
    if (this.closed) return;
    let wrote = false;
    let ok = true;
    while (this.queueHead < this.queue.length) {
      const slot = this.queue[this.queueHead]!;
      if (slot.frames === null) break;
      if (!wrote) {
        this.socket.cork();
        wrote = true;
      }
      for (const fr of slot.frames) ok = this.socket.write(fr);
      this.queueHead++;
    }
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    if (wrote) this.socket.uncork();
    if (!ok) this.pause("drain");
    if (this.queue.length - this.queueHead < this.limits.maxInFlight) this.resume("inflight");
  }

  private pause(reason: "inflight" | "drain"): void {
    this.pausedBy.add(reason);
    this.socket.pause();
  }

  private resume(reason: "inflight" | "drain"): void {
    if (!this.pausedBy.delete(reason)) return;
    if (this.pausedBy.size === 0 && !this.closed) {
      if (this.partialSince !== 0) this.partialSince = Date.now(); // the wait was ours
      this.socket.resume();
    }
  }

  private onTimeout(): void {
    if (this.closed) return;
    if (this.socket.writableNeedDrain) {
      this.log.warn(Action.CONNECTION, "fail", {
        ip: this.ip,
        who: this.label,
        code: errorName(ErrorCode.SLOW_READER),
      });
      this.socket.destroy();
      return;
    }
    if (this.waitingForDraw || this.queue.length > this.queueHead) return; // we owe a reply
    this.fail(ErrorCode.IDLE_TIMEOUT, "connection idle for too long");
  }

  /** Protocol violation or condition that ends the connection: ERROR frame, one log line, close. */
  fail(code: ErrorCodeValue, reason: string, seq = 0): void {
    if (this.closed) return;
    const level =
      code === ErrorCode.REPLACED || code === ErrorCode.SHUTTING_DOWN ? "INFO" : "WARNING";
    this.log.log(level, Action.CONNECTION, code === ErrorCode.SHUTTING_DOWN ? "success" : "fail", {
      ip: this.ip,
      who: this.label,
      code: errorName(code),
      reason,
    });
    this.closed = true;
    this.cancelDraws();
    if (this.agency) this.lottery.unbind(this.agency, this);
    // Unanswered requests are abandoned: the agency resumes from its committed position.
    endThenDestroy(this.socket, encodeFaultReply(MsgType.ERROR, seq, code, reason));
  }

  /** Shutdown: stop reading, answer what is ready, tell the agency, close. */
  shutdown(): void {
    if (this.closed) return;
    this.flushQueue();
    this.fail(ErrorCode.SHUTTING_DOWN, "server shutting down");
  }
}
