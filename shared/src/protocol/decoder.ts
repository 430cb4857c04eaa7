// Streaming frame decoder: accepts bytes in any chunking (one byte at a time or many frames in
// one chunk) and yields whole frames. Keeps a list of chunks and copies only when a frame spans
// chunks; a frame inside one chunk is returned as a zero-copy view. The header is checked as
// soon as it is complete, so a length claiming gigabytes is refused before anything is buffered.

import { ErrorCode, type Fault, fault } from "../errors.js";
import { type Frame, HEADER_SIZE, isKnownType, MAGIC, MAX_FRAME, VERSION } from "./frame.js";

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed: Fault | null = null;

  constructor(private readonly maxFrame: number = MAX_FRAME) {}

  /** Bytes received but not yet returned as frames. */
  get pending(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0 || this.failed) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** Next complete frame, a Fault (the stream is unusable from then on), or null (need bytes). */
  next(): Frame | Fault | null {
    if (this.failed) return this.failed;
    if (this.buffered < 1) return null;
    if (this.peek(0) !== MAGIC) return this.fail(ErrorCode.BAD_MAGIC, "bad magic byte");
    if (this.buffered < 2) return null;
    if (this.peek(1) !== VERSION) {
      return this.fail(ErrorCode.UNSUPPORTED_VERSION, `unsupported version ${this.peek(1)}`);
    }
    if (this.buffered < 3) return null;
    const type = this.peek(2);
    if (!isKnownType(type)) return this.fail(ErrorCode.UNKNOWN_TYPE, `unknown type ${type}`);
    if (this.buffered < HEADER_SIZE) return null;
    const head =
      this.chunks[0]!.length >= HEADER_SIZE ? this.chunks[0]! : this.copyOut(HEADER_SIZE);
    const len = head.readUInt32BE(8);
    if (len > this.maxFrame - HEADER_SIZE) {
      return this.fail(ErrorCode.FRAME_TOO_LARGE, `frame of ${len + HEADER_SIZE} bytes`);
    }
    const total = HEADER_SIZE + len;
    if (this.buffered < total) return null;
    const flags = head[3]!;
    const seq = head.readUInt32BE(4);
    const frame = this.consume(total);
    return { type, flags, seq, payload: frame.subarray(HEADER_SIZE) };
  }

  /** Call when the peer closed: a partial frame left behind is a fault. */
  end(): Fault | null {
    if (this.failed) return this.failed;
    if (this.buffered > 0) {
      return this.fail(
        ErrorCode.TRUNCATED_FRAME,
        `connection closed inside a frame (${this.buffered} bytes)`,
      );
    }
    return null;
  }

  private fail(code: Fault["code"], reason: string): Fault {
    this.failed = fault(code, reason);
    this.chunks = [];
    this.buffered = 0;
    return this.failed;
  }

  private peek(i: number): number {
    let idx = i;
    for (const c of this.chunks) {
      if (idx < c.length) return c[idx]!;
      idx -= c.length;
    }
    return -1;
  }

  /** Copies the first n bytes without consuming them. */
  private copyOut(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    for (const c of this.chunks) {
      const take = Math.min(c.length, n - off);
      c.copy(out, off, 0, take);
      off += take;
      if (off === n) break;
    }
    return out;
  }

  private consume(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (n === first.length) {
      this.chunks.shift();
      return first;
    }
    if (n < first.length) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const take = Math.min(c.length, n - off);
      c.copy(out, off, 0, take);
      off += take;
      if (take === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(take);
    }
    return out;
  }
}
