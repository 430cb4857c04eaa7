// Frame layout (big endian), documented byte by byte in the README:
//   0  u8   magic 0xFA   (never the first byte of UTF-8 text: lets the server tell protocol from echo)
//   1  u8   version 1
//   2  u8   message type
//   3  u8   flags (bit 0: MORE — another frame of the same reply follows)
//   4  u32  seq: request id chosen by the client, echoed by the server's reply
//   8  u32  payload length
//  12  ...  payload
// A whole frame (header + payload) is at most 8192 bytes.

export const MAGIC = 0xfa;
export const VERSION = 1;
export const HEADER_SIZE = 12;
export const MAX_FRAME = 8192;
export const MAX_PAYLOAD = MAX_FRAME - HEADER_SIZE;
export const FLAG_MORE = 0x01;

export const MsgType = {
  // agency -> server
  HELLO: 0x01,
  BET: 0x02,
  BATCH: 0x03,
  DONE: 0x04,
  WINNERS_REQUEST: 0x05,
  // server -> agency
  ACK: 0x80,
  WELCOME: 0x81,
  REJECT: 0x82,
  WINNERS: 0x83,
  NOT_READY: 0x84,
  ERROR: 0x85,
} as const;

export type MsgTypeValue = (typeof MsgType)[keyof typeof MsgType];

const KNOWN = new Set<number>(Object.values(MsgType));
export function isKnownType(t: number): t is MsgTypeValue {
  return KNOWN.has(t);
}

export interface Frame {
  type: number;
  flags: number;
  seq: number;
  payload: Buffer;
}

export function writeHeader(
  out: Buffer,
  off: number,
  type: number,
  flags: number,
  seq: number,
  len: number,
): void {
  out[off] = MAGIC;
  out[off + 1] = VERSION;
  out[off + 2] = type;
  out[off + 3] = flags;
  out.writeUInt32BE(seq >>> 0, off + 4);
  out.writeUInt32BE(len, off + 8);
}

/** Builds a whole frame around a payload. Pure: returns a new Buffer. */
export function encodeFrame(type: number, seq: number, payload: Buffer, flags = 0): Buffer {
  if (payload.length > MAX_PAYLOAD) {
    throw new RangeError(`payload of ${payload.length} bytes exceeds ${MAX_PAYLOAD}`);
  }
  const out = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  writeHeader(out, 0, type, flags, seq, payload.length);
  payload.copy(out, HEADER_SIZE);
  return out;
}
