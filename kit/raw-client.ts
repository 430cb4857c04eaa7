// Speaking the protocol by hand, to probe the server: a connection that sends frames and reads
// the replies (RawClient), and a one-shot exchange of exact bytes (hostile input).

import { connect, createConnection, type Socket } from "node:net";
import { ErrorCode, isFault } from "../shared/src/errors.js";
import { FrameDecoder } from "../shared/src/protocol/decoder.js";
import { FLAG_MORE, type Frame, MsgType } from "../shared/src/protocol/frame.js";
import * as msg from "../shared/src/protocol/messages.js";

/** A bare protocol connection for probing the server: send frames, read reply frames. */
export class RawClient {
  readonly frames: Frame[] = [];
  readonly closed: Promise<void>;
  private readonly decoder = new FrameDecoder();
  private waiters: Array<() => void> = [];
  private seq = 0;
  isClosed = false;
  protocolFault: string | null = null;

  private constructor(readonly socket: Socket) {
    socket.on("data", (c: Buffer) => {
      this.decoder.push(c);
      for (;;) {
        const f = this.decoder.next();
        if (f === null) break;
        if (isFault(f)) {
          this.protocolFault = f.reason;
          socket.destroy();
          break;
        }
        const fr = f as Frame;
        this.frames.push({ ...fr, payload: Buffer.from(fr.payload) });
      }
      this.wake();
    });
    socket.on("error", () => undefined);
    this.closed = new Promise((resolve) =>
      socket.on("close", () => {
        this.isClosed = true;
        this.wake();
        resolve();
      }),
    );
  }

  static connect(port: number, host = "127.0.0.1"): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = createConnection({ port, host, noDelay: true });
      s.once("error", reject);
      s.once("connect", () => {
        s.off("error", reject);
        resolve(new RawClient(s));
      });
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  nextSeq(): number {
    this.seq++;
    return this.seq;
  }

  send(buf: Buffer): void {
    this.socket.write(buf);
  }

  /** Waits until `cond()` holds or the connection closed; rejects after `timeoutMs`. */
  async until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond() && !this.isClosed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("hang guard: no reply from the server");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Sends one request and returns its reply frames (a WINNERS reply may span several). */
  async request(frame: Buffer, timeoutMs = 10_000): Promise<Frame[]> {
    const seq = frame.readUInt32BE(4);
    const start = this.frames.length;
    this.send(frame);
    const complete = () => {
      const mine = this.frames.slice(start);
      const err = mine.find((f) => f.type === MsgType.ERROR);
      if (err) return true;
      const last = mine[mine.length - 1];
      return last !== undefined && last.seq === seq && (last.flags & FLAG_MORE) === 0;
    };
    await this.until(complete, timeoutMs);
    const mine = this.frames.slice(start);
    if (!complete()) throw new Error(`connection closed without a reply to seq ${seq}`);
    return mine;
  }

  async hello(agency: number, secret = ""): Promise<msg.Welcome> {
    const seq = this.nextSeq();
    const [f] = await this.request(msg.encodeHello(seq, { agency, secret }));
    if (f!.type !== MsgType.WELCOME) throw new Error(`HELLO answered with ${describeFrame(f!)}`);
    const w = msg.decodeWelcome(f!.payload);
    if (isFault(w)) throw new Error(w.reason);
    return w;
  }

  async done(total: number): Promise<Frame> {
    const seq = this.nextSeq();
    const [f] = await this.request(msg.encodeDone(seq, total));
    return f!;
  }

  /**
   * WINNERS_REQUEST: the documents, or null when the draw has not happened (`wait` false), or
   * the documents once the draw happened (`wait` true; bounded by `timeoutMs`).
   */
  async winners(wait = false, timeoutMs = 10_000): Promise<string[] | null> {
    const seq = this.nextSeq();
    const frames = await this.request(msg.encodeWinnersRequest(seq, wait), timeoutMs);
    if (frames[0]!.type === MsgType.NOT_READY) return null;
    const out: string[] = [];
    for (const f of frames) {
      if (f.type !== MsgType.WINNERS) throw new Error(`expected WINNERS, got ${describeFrame(f)}`);
      const w = msg.decodeWinners(f.payload);
      if (isFault(w)) throw new Error(w.reason);
      out.push(...w);
    }
    return out;
  }

  async close(): Promise<void> {
    this.socket.end();
    const t = setTimeout(() => this.socket.destroy(), 2000);
    await this.closed;
    clearTimeout(t);
  }
}

const TYPE_NAMES = new Map<number, string>(Object.entries(MsgType).map(([k, v]) => [v, k]));

/** A frame type's name (`HELLO`); undefined for a type the protocol does not have. */
export function typeName(type: number): string | undefined {
  return TYPE_NAMES.get(type);
}

export function describeFrame(f: Frame): string {
  const name = typeName(f.type) ?? `type ${f.type}`;
  if (f.type === MsgType.ERROR || f.type === MsgType.REJECT) {
    const r = msg.decodeFaultReply(f.payload);
    if (!isFault(r)) {
      const code = Object.entries(ErrorCode).find(([, v]) => v === r.code)?.[0] ?? r.code;
      return `${name} ${code}: ${r.reason}`;
    }
  }
  return name;
}

export interface RawResult {
  /** Frames decoded from what the server sent back. */
  frames: Frame[];
  bytes: Buffer;
  /** True when the server closed the connection (false: we gave up waiting). */
  closedByServer: boolean;
}

/** A BATCH frame of `rows` (first_name, last_name, document, birthdate, number), the first at `first`. */
export function batch(seq: number, first: number, rows: string[][]): Buffer {
  const b = new msg.BatchBuilder();
  for (const r of rows) {
    if (!b.addStrings(r)) throw new Error(`row does not fit a batch: ${r.join(",")}`);
  }
  return b.build(MsgType.BATCH, seq, first);
}

/** Sends `chunks` (optionally half-closing), then waits for the server to close, up to `waitMs`. */
export function exchange(
  port: number,
  chunks: Buffer[],
  opts: { end?: boolean; waitMs?: number } = {},
): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: "127.0.0.1", port });
    const got: Buffer[] = [];
    let closedByServer = false;
    const timer = setTimeout(() => sock.destroy(), opts.waitMs ?? 5000);
    sock.on("connect", () => {
      for (const c of chunks) sock.write(c);
      if (opts.end) sock.end();
    });
    sock.on("data", (d: Buffer) => got.push(d));
    sock.on("end", () => {
      closedByServer = true;
    });
    sock.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ECONNRESET" || err.code === "EPIPE") closedByServer = true;
      else reject(err);
    });
    sock.on("close", () => {
      clearTimeout(timer);
      const bytes = Buffer.concat(got);
      const dec = new FrameDecoder();
      dec.push(bytes);
      const frames: Frame[] = [];
      for (let f = dec.next(); f && !isFault(f); f = dec.next()) frames.push(f as Frame);
      resolve({ frames, bytes, closedByServer });
    });
  });
}
