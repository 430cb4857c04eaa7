// The agency's side of one protocol connection: frames out with backpressure, frames in through
// the shared decoder, replies matched to requests in order (the server answers in request order).

import { createConnection, type Socket } from "node:net";
import { ErrorCode, errorName, fault, isFault, type PeerFault } from "../../shared/src/errors.js";
import { waitDrain } from "../../shared/src/net.js";
import { FrameDecoder } from "../../shared/src/protocol/decoder.js";
import {
  FLAG_MORE,
  type Frame,
  HEADER_SIZE,
  MAGIC,
  MsgType,
  VERSION,
} from "../../shared/src/protocol/frame.js";
import { decodeFaultReply } from "../../shared/src/protocol/messages.js";
import { describeTlsFailure } from "../../shared/src/tls.js";
import type { ClientTls } from "./tls.js";

/**
 * Why a link stopped: the server said so (fault from an ERROR frame), the transport broke, or
 * TLS refused a certificate (ours or the server's: retrying cannot help).
 */
export class LinkError extends Error {
  constructor(
    readonly kind: "server_error" | "transport" | "protocol" | "tls",
    readonly fault: PeerFault | null,
    message: string,
  ) {
    super(message);
    this.name = "LinkError";
  }
}

interface Pending {
  seq: number;
  frames: Frame[];
  /** Set for a request awaited on its own; a posted one (`post`) has none. */
  resolve: ((frames: Frame[]) => void) | null;
  reject: ((err: LinkError) => void) | null;
}

/** The reply to a posted request: an ACK's value, or the reply's frames when it is not an ACK. */
export type PostedReply = number | Frame[];

/** An ACK frame: header and a u32. */
const ACK_FRAME = HEADER_SIZE + 4;

/** Big-endian u32 at c[at] (Buffer's readUInt32BE validates its argument on every call). */
function u32(c: Buffer, at: number): number {
  return ((c[at]! << 24) | (c[at + 1]! << 16) | (c[at + 2]! << 8) | c[at + 3]!) >>> 0;
}

export interface ConnectOptions {
  timeoutMs?: number;
  tls?: ClientTls | null;
  entry?: string;
}

function transportError(err: NodeJS.ErrnoException): LinkError {
  const why = describeTlsFailure(err, "server");
  return why !== null
    ? new LinkError("tls", null, why)
    : new LinkError("transport", null, err.code ?? err.message);
}

export class Link {
  private readonly decoder = new FrameDecoder();
  private readonly pending: Pending[] = [];
  private head = 0;
  /** Replies to posted requests not yet taken by `nextReply`, in order. */
  private replies: PostedReply[] = [];
  private repliesHead = 0;
  private waiter: { resolve: () => void; reject: (err: LinkError) => void } | null = null;
  private seq = 0;
  private broken: LinkError | null = null;
  private closedPromise: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on("data", (c: Buffer) => this.onData(c));
    socket.on("error", (err: NodeJS.ErrnoException) => this.breakWith(transportError(err)));
    this.closedPromise = new Promise((resolve) => {
      socket.on("close", () => {
        const f = this.decoder.end();
        this.breakWith(
          new LinkError("transport", f, f ? f.reason : "connection closed by the server"),
        );
        resolve();
      });
    });
  }

  /**
   * Connects once (over TLS when `tls` is set; `entry` is the server.address entry `host` came
   * from); rejects with the socket error (callers retry) or a "tls" LinkError (callers stop).
   */
  static connect(
    host: string,
    port: number,
    { timeoutMs = 5000, tls = null, entry = `${host}:${port}` }: ConnectOptions = {},
  ): Promise<Link> {
    return new Promise((resolve, reject) => {
      const socket = tls
        ? tls.connect(host, port, entry)
        : createConnection({ host, port, noDelay: true, keepAlive: true });
      const timer = setTimeout(() => {
        socket.destroy(new Error("ETIMEDOUT"));
      }, timeoutMs);
      const onError = (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const e = transportError(err);
        reject(e.kind === "tls" ? e : err);
      };
      socket.once("error", onError);
      socket.once(tls ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        socket.off("error", onError);
        resolve(new Link(socket));
      });
    });
  }

  nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  get inFlight(): number {
    return this.pending.length - this.head;
  }

  /**
   * Sends one request frame (built with seq `seq`) and returns the reply frames. Resolves after
   * the write was accepted by the socket; use `drained()` to respect backpressure.
   */
  request(seq: number, frame: Buffer): Promise<Frame[]> {
    if (this.broken) return Promise.reject(this.broken);
    const p = new Promise<Frame[]>((resolve, reject) => {
      this.pending.push({ seq, frames: [], resolve, reject });
    });
    this.socket.write(frame);
    return p;
  }

  /**
   * Sends a request whose reply is taken later with `nextReply` (the agency's batches). No
   * promise, closure or frame object per request: with an ACK as the reply (the common case)
   * the agency's per-batch work was about half link machinery (callgrind, 270 batches: 104K
   * instructions per batch against 47K for the socket alone).
   */
  post(seq: number, frame: Buffer): void {
    if (this.broken) return;
    this.pending.push({ seq, frames: [], resolve: null, reject: null });
    this.socket.write(frame);
  }

  /** The reply to the oldest posted request not taken yet, if it has arrived. */
  nextReply(): PostedReply | null {
    if (this.repliesHead === this.replies.length) return null;
    const r = this.replies[this.repliesHead]!;
    this.repliesHead++;
    if (this.repliesHead === this.replies.length) {
      this.replies.length = 0;
      this.repliesHead = 0;
    }
    return r;
  }

  /** Resolves when a posted request's reply is there to take; rejects when the link broke. */
  replied(): Promise<void> {
    if (this.repliesHead < this.replies.length) return Promise.resolve();
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Resolves when the socket can take more (or is gone). */
  drained(): Promise<void> {
    return waitDrain(this.socket);
  }

  private onData(chunk: Buffer): void {
    // ACKs of posted requests are taken straight from the chunk; anything else (and an ACK
    // split across chunks) goes through the decoder.
    const at = this.decoder.pending === 0 ? this.takeAcks(chunk) : 0;
    if (at === chunk.length) return;
    this.decoder.push(at === 0 ? chunk : chunk.subarray(at));
    for (;;) {
      const f = this.decoder.next();
      if (f === null) return;
      if (isFault(f)) {
        this.breakWith(new LinkError("protocol", f, `bad frame from server: ${f.reason}`));
        this.socket.destroy();
        return;
      }
      const fr = f as Frame;
      if (fr.type === MsgType.ERROR) {
        const r = decodeFaultReply(fr.payload);
        const ft = isFault(r) ? r : fault(r.code, r.reason);
        this.breakWith(
          new LinkError("server_error", ft, `server error ${errorName(ft.code)}: ${ft.reason}`),
        );
        this.socket.destroy();
        return;
      }
      const p = this.pending[this.head];
      if (!p || p.seq !== fr.seq) {
        this.breakWith(
          new LinkError(
            "protocol",
            fault(ErrorCode.MALFORMED, "unexpected reply"),
            "reply out of order",
          ),
        );
        this.socket.destroy();
        return;
      }
      // copy: the payload may be a view of a socket chunk we do not keep
      p.frames.push({ ...fr, payload: Buffer.from(fr.payload) });
      if (fr.flags & FLAG_MORE) continue;
      this.answered(p, p.frames);
    }
  }

  /** Takes the whole ACK frames of posted requests at the start of `c`; how many bytes. */
  private takeAcks(c: Buffer): number {
    let at = 0;
    while (
      at + ACK_FRAME <= c.length &&
      c[at] === MAGIC &&
      c[at + 1] === VERSION &&
      c[at + 2] === MsgType.ACK &&
      c[at + 3] === 0 &&
      u32(c, at + 8) === 4
    ) {
      const p = this.pending[this.head];
      // only a whole reply to a posted request (not the end of one flagged MORE)
      if (!p || p.resolve !== null || p.frames.length > 0 || p.seq !== u32(c, at + 4)) {
        break;
      }
      this.answered(p, u32(c, at + HEADER_SIZE));
      at += ACK_FRAME;
    }
    return at;
  }

  private answered(p: Pending, reply: PostedReply): void {
    this.head++;
    // Answered entries are dropped: a link waiting for the draw keeps nothing of its batches
    // (with thousands of agencies in one process that adds up).
    if (this.head === this.pending.length) {
      this.pending.length = 0;
      this.head = 0;
    } else if (this.head > 256 && this.head * 2 > this.pending.length) {
      this.pending.splice(0, this.head);
      this.head = 0;
    }
    if (p.resolve !== null) {
      p.resolve(reply as Frame[]);
      return;
    }
    this.replies.push(reply);
    const w = this.waiter;
    if (w !== null) {
      this.waiter = null;
      w.resolve();
    }
  }

  private breakWith(err: LinkError): void {
    if (this.broken) return;
    this.broken = err;
    for (let i = this.head; i < this.pending.length; i++) this.pending[i]!.reject?.(err);
    this.pending.length = 0;
    this.head = 0;
    const w = this.waiter;
    if (w !== null) {
      this.waiter = null;
      w.reject(err);
    }
  }

  /** Closes the connection (half-close first so the server sees a clean end). */
  async close(): Promise<void> {
    if (!this.socket.destroyed) {
      this.socket.end();
      const t = setTimeout(() => this.socket.destroy(), 1000);
      await this.closedPromise;
      clearTimeout(t);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}
