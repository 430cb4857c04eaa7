// Payload codecs: pure functions over Buffers, no sockets. Every decoder returns a value or a
// Fault (MALFORMED) and never throws on hostile bytes.

import { isUtf8 } from "node:buffer";
import { FIELD_COUNT, MAX_FIELD_BYTES } from "../bet.js";
import {
  ErrorCode,
  type ErrorCodeValue,
  type Fault,
  fault,
  type WireCode,
  wireCode,
} from "../errors.js";
import { encodeFrame, FLAG_MORE, HEADER_SIZE, MAX_PAYLOAD, MsgType, writeHeader } from "./frame.js";

const malformed = (what: string): Fault => fault(ErrorCode.MALFORMED, `malformed ${what}`);

// ---- HELLO: u32 agency, u8 secret length, secret bytes (UTF-8, may be empty)
export interface Hello {
  agency: number;
  secret: string;
}
export function encodeHello(seq: number, h: Hello): Buffer {
  const secret = Buffer.from(h.secret, "utf8");
  if (secret.length > 255) throw new RangeError("secret longer than 255 bytes");
  const p = Buffer.allocUnsafe(5 + secret.length);
  p.writeUInt32BE(h.agency, 0);
  p[4] = secret.length;
  secret.copy(p, 5);
  return encodeFrame(MsgType.HELLO, seq, p);
}
export function decodeHello(p: Buffer): Hello | Fault {
  if (p.length < 5 || p.length !== 5 + p[4]!) return malformed("HELLO");
  const secret = p.subarray(5);
  if (!isUtf8(secret)) return malformed("HELLO secret");
  return { agency: p.readUInt32BE(0), secret: secret.toString("utf8") };
}

// ---- WELCOME: u32 committed bets of this agency, u8 state
export const AgencyState = { OPEN: 0, DONE: 1, DRAWN: 2 } as const;
export interface Welcome {
  committed: number;
  state: number;
}
export function encodeWelcome(seq: number, w: Welcome): Buffer {
  const p = Buffer.allocUnsafe(5);
  p.writeUInt32BE(w.committed, 0);
  p[4] = w.state;
  return encodeFrame(MsgType.WELCOME, seq, p);
}
export function decodeWelcome(p: Buffer): Welcome | Fault {
  if (p.length !== 5 || p[4]! > 2) return malformed("WELCOME");
  return { committed: p.readUInt32BE(0), state: p[4]! };
}

// ---- ACK: u32 value (the agency's committed total after the acknowledged request)
export function encodeAck(seq: number, value: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + 4);
  writeHeader(out, 0, MsgType.ACK, 0, seq, 4);
  out.writeUInt32BE(value >>> 0, HEADER_SIZE);
  return out;
}
export function decodeAck(p: Buffer): number | Fault {
  if (p.length !== 4) return malformed("ACK");
  return p.readUInt32BE(0);
}

// ---- REJECT / ERROR: u16 code, u16 bet index (NO_INDEX 0xFFFF: none), u16 reason length, reason
export const NO_INDEX = 0xffff;
export interface FaultReply {
  /** Validated: a code this build does not know is an UnknownCode, not a member. */
  code: WireCode;
  index: number;
  reason: string;
}
export function encodeFaultReply(
  type: typeof MsgType.REJECT | typeof MsgType.ERROR,
  seq: number,
  code: ErrorCodeValue,
  reason: string,
  index = NO_INDEX,
): Buffer {
  const r = Buffer.from(reason.slice(0, 200), "utf8");
  const p = Buffer.allocUnsafe(6 + r.length);
  p.writeUInt16BE(code, 0);
  p.writeUInt16BE(index, 2);
  p.writeUInt16BE(r.length, 4);
  r.copy(p, 6);
  return encodeFrame(type, seq, p);
}
export function decodeFaultReply(p: Buffer): FaultReply | Fault {
  if (p.length < 6 || p.length !== 6 + p.readUInt16BE(4)) return malformed("REJECT/ERROR");
  return {
    code: wireCode(p.readUInt16BE(0)),
    index: p.readUInt16BE(2),
    reason: p.subarray(6).toString("utf8"),
  };
}

// ---- DONE: u32 total bets the agency sent (and had acknowledged)
export function encodeDone(seq: number, total: number): Buffer {
  const p = Buffer.allocUnsafe(4);
  p.writeUInt32BE(total, 0);
  return encodeFrame(MsgType.DONE, seq, p);
}
export function decodeDone(p: Buffer): number | Fault {
  if (p.length !== 4) return malformed("DONE");
  return p.readUInt32BE(0);
}

// ---- WINNERS_REQUEST: u8 wait (1: hold the reply until the draw; 0: NOT_READY if not yet)
export function encodeWinnersRequest(seq: number, wait: boolean): Buffer {
  return encodeFrame(MsgType.WINNERS_REQUEST, seq, Buffer.from([wait ? 1 : 0]));
}
export function decodeWinnersRequest(p: Buffer): { wait: boolean } | Fault {
  if (p.length !== 1 || p[0]! > 1) return malformed("WINNERS_REQUEST");
  return { wait: p[0] === 1 };
}

export function encodeNotReady(seq: number): Buffer {
  return encodeFrame(MsgType.NOT_READY, seq, Buffer.alloc(0));
}

// ---- WINNERS: u16 count, then count x (u8 length, document bytes). FLAG_MORE on every frame but
// the last when the list does not fit in one frame.
export function encodeWinners(seq: number, documents: readonly string[]): Buffer[] {
  const frames: Buffer[] = [];
  let i = 0;
  do {
    const parts: Buffer[] = [];
    let size = 2;
    while (i < documents.length) {
      const d = Buffer.from(documents[i]!, "ascii");
      if (size + 1 + d.length > MAX_PAYLOAD) break;
      parts.push(d);
      size += 1 + d.length;
      i++;
    }
    const p = Buffer.allocUnsafe(size);
    p.writeUInt16BE(parts.length, 0);
    let off = 2;
    for (const d of parts) {
      p[off++] = d.length;
      off += d.copy(p, off);
    }
    frames.push(encodeFrame(MsgType.WINNERS, seq, p, i < documents.length ? FLAG_MORE : 0));
  } while (i < documents.length);
  return frames;
}
export function decodeWinners(p: Buffer): string[] | Fault {
  if (p.length < 2) return malformed("WINNERS");
  const n = p.readUInt16BE(0);
  const out: string[] = [];
  let off = 2;
  for (let k = 0; k < n; k++) {
    if (off >= p.length) return malformed("WINNERS");
    const len = p[off++]!;
    if (off + len > p.length) return malformed("WINNERS");
    out.push(p.toString("latin1", off, off + len));
    off += len;
  }
  if (off !== p.length) return malformed("WINNERS");
  return out;
}

// ---- BET / BATCH: u32 first (agency position of the first bet), u16 count,
// count x 5 u8 field lengths, then the field bytes bet after bet. Lengths come first so the
// field bytes form one contiguous UTF-8 region that is validated with a single call.
export const BATCH_PREFIX = 6;

/**
 * A decoded batch: field i of bet b is payload[starts[b*FIELD_COUNT+i] .. ends[b*FIELD_COUNT+i]).
 */
export interface BatchView {
  first: number;
  count: number;
  buf: Buffer;
  starts: Int32Array;
  ends: Int32Array;
}

// Reused across calls: decoding is synchronous and the view is consumed before the next frame.
let scratchStarts = new Int32Array(FIELD_COUNT * 512);
let scratchEnds = new Int32Array(FIELD_COUNT * 512);

export function decodeBatch(p: Buffer): BatchView | Fault {
  if (p.length < BATCH_PREFIX) return malformed("BATCH");
  const first = p.readUInt32BE(0);
  const count = p.readUInt16BE(4);
  if (count === 0) return fault(ErrorCode.EMPTY_BATCH, "batch holds no bets");
  const nLen = count * FIELD_COUNT;
  const dataStart = BATCH_PREFIX + nLen;
  if (dataStart > p.length) return malformed("BATCH lengths");
  if (scratchStarts.length < nLen) {
    scratchStarts = new Int32Array(nLen);
    scratchEnds = new Int32Array(nLen);
  }
  const starts = scratchStarts;
  const ends = scratchEnds;
  let pos = dataStart;
  for (let i = 0; i < nLen; i++) {
    starts[i] = pos;
    pos += p[BATCH_PREFIX + i]!;
    ends[i] = pos;
  }
  if (pos !== p.length) return malformed("BATCH sizes");
  // One UTF-8 check for all field bytes; a name may not start with a continuation byte, so every
  // field boundary is also a character boundary and each field is valid UTF-8 on its own.
  if (!isUtf8(p.subarray(dataStart))) return fault(ErrorCode.INVALID_NAME, "field is not UTF-8");
  for (let b = 0; b < count; b++) {
    for (let f = 0; f < 2; f++) {
      const s = starts[b * FIELD_COUNT + f]!;
      if (s < ends[b * FIELD_COUNT + f]! && (p[s]! & 0xc0) === 0x80) {
        return fault(ErrorCode.INVALID_NAME, "field is not UTF-8");
      }
    }
  }
  return { first, count, buf: p, starts, ends };
}

/** Bets in one frame at most (five length bytes each, even with empty fields). */
export const MAX_BETS_PER_FRAME = Math.floor((MAX_PAYLOAD - BATCH_PREFIX) / FIELD_COUNT);

/**
 * Size of a BatchBuilder's staging area: a full frame's field bytes, one more bet of five
 * 255-byte fields (a scanner copies a row before it knows whether it fits) and a few bytes for
 * word-wide writes.
 */
export const BATCH_STAGING_BYTES = MAX_PAYLOAD + FIELD_COUNT * MAX_FIELD_BYTES + 16;

/**
 * Accumulates bets into one BET/BATCH frame that never exceeds MAX_FRAME (8192) bytes. Field
 * bytes are copied once into a staging area; `build()` lays out the frame.
 *
 * `data`, `lengths`, `dataLen` and `count` are open to a scanner that copies rows in itself
 * (client/src/scan.ts): bet k's field f is `lengths[k*FIELD_COUNT+f]` bytes, bets laid out one
 * after the other in `data[0..dataLen)`. The scanner may also give the staging area (its own
 * memory).
 */
export class BatchBuilder {
  /** Last added bet (by `add`): data[lastStarts[f]..lastEnds[f]). */
  readonly lastStarts = new Int32Array(FIELD_COUNT);
  readonly lastEnds = new Int32Array(FIELD_COUNT);
  readonly lengths = new Uint8Array(FIELD_COUNT * MAX_BETS_PER_FRAME);
  dataLen = 0;
  private lastBetStart = 0;
  count = 0;

  /** `data`: the staging area, at least BATCH_STAGING_BYTES. */
  constructor(public data: Buffer = Buffer.allocUnsafe(BATCH_STAGING_BYTES)) {
    if (data.length < BATCH_STAGING_BYTES) throw new RangeError("staging area too small");
  }

  /** Frame size if one more bet with `fieldBytes` bytes of fields were added. */
  sizeWith(fieldBytes: number): number {
    return HEADER_SIZE + BATCH_PREFIX + (this.count + 1) * FIELD_COUNT + this.dataLen + fieldBytes;
  }

  get frameSize(): number {
    return HEADER_SIZE + BATCH_PREFIX + this.count * FIELD_COUNT + this.dataLen;
  }

  /**
   * Adds a bet given as five byte ranges. Returns false (adding nothing) if the frame would
   * exceed MAX_FRAME bytes. Fields must be at most 255 bytes (validated before).
   */
  add(
    bufs: ArrayLike<Uint8Array>,
    starts: ArrayLike<number>,
    ends: ArrayLike<number>,
    base = 0,
  ): boolean {
    let bytes = 0;
    for (let f = 0; f < FIELD_COUNT; f++) bytes += ends[base + f]! - starts[base + f]!;
    if (this.sizeWith(bytes) > HEADER_SIZE + MAX_PAYLOAD) return false;
    this.lastBetStart = this.dataLen;
    for (let f = 0; f < FIELD_COUNT; f++) {
      const src = bufs[base + f]!;
      const s = starts[base + f]!;
      const e = ends[base + f]!;
      this.lengths[this.count * FIELD_COUNT + f] = e - s;
      this.lastStarts[f] = this.dataLen;
      for (let i = s; i < e; i++) this.data[this.dataLen++] = src[i]!;
      this.lastEnds[f] = this.dataLen;
    }
    this.count++;
    return true;
  }

  /** Removes the bet added last (it failed validation). */
  undo(): void {
    if (this.count === 0) return;
    this.count--;
    this.dataLen = this.lastBetStart;
  }

  /** Adds a bet given as strings (bet mode, tests). */
  addStrings(fields: readonly string[]): boolean {
    const bufs = fields.map((f) => Buffer.from(f, "utf8"));
    return this.add(
      bufs,
      bufs.map(() => 0),
      bufs.map((b) => b.length),
    );
  }

  build(type: typeof MsgType.BET | typeof MsgType.BATCH, seq: number, first: number): Buffer {
    const out = Buffer.allocUnsafe(this.frameSize);
    this.buildInto(out, 0, type, seq, first);
    return out;
  }

  /** Lays out the frame at out[off..]; returns its size (`frameSize`). */
  buildInto(
    out: Buffer,
    off: number,
    type: typeof MsgType.BET | typeof MsgType.BATCH,
    seq: number,
    first: number,
  ): number {
    const nLen = this.count * FIELD_COUNT;
    const payloadLen = BATCH_PREFIX + nLen + this.dataLen;
    writeHeader(out, off, type, 0, seq, payloadLen);
    const p = off + HEADER_SIZE;
    out[p] = first >>> 24;
    out[p + 1] = first >>> 16;
    out[p + 2] = first >>> 8;
    out[p + 3] = first;
    out[p + 4] = this.count >>> 8;
    out[p + 5] = this.count;
    out.set(this.lengths.subarray(0, nLen), p + BATCH_PREFIX);
    out.set(this.data.subarray(0, this.dataLen), p + BATCH_PREFIX + nLen);
    return HEADER_SIZE + payloadLen;
  }

  reset(): void {
    this.count = 0;
    this.dataLen = 0;
  }
}
