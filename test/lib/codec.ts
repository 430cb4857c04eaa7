// The codec test kit: byte helpers and hand-built payloads shared by the unit and property tests of
// the protocol, the link and the row encoder (each was written in three places before).

import assert from "node:assert/strict";
import { ErrorCode, type Fault, isFault } from "../../shared/src/errors.js";
import { FrameDecoder } from "../../shared/src/protocol/decoder.js";
import {
  encodeFrame,
  FLAG_MORE,
  type Frame,
  HEADER_SIZE,
  MAX_PAYLOAD,
  MsgType,
} from "../../shared/src/protocol/frame.js";
import * as msg from "../../shared/src/protocol/messages.js";

/** Hex literal with optional spaces/newlines → bytes. */
export function hex(s: string): Buffer {
  const clean = s.replace(/\s+/g, "");
  assert.match(clean, /^([0-9a-f]{2})*$/i, `bad hex literal ${s}`);
  return Buffer.from(clean, "hex");
}

/** A frame's payload (the bytes after its header). */
export function payloadOf(frame: Buffer): Buffer {
  return frame.subarray(HEADER_SIZE);
}

/** A BATCH payload built by hand as the wire carries it: first, count, lengths, field bytes. */
export function batchPayload(first: number, bets: Buffer[][]): Buffer {
  const head = Buffer.alloc(msg.BATCH_PREFIX);
  head.writeUInt32BE(first, 0);
  head.writeUInt16BE(bets.length, 4);
  const lens = Buffer.from(bets.flatMap((b) => b.map((f) => f.length)));
  return Buffer.concat([head, lens, ...bets.flat()]);
}

/** The five fields of each bet of a decoded batch, as strings. */
export function batchFields(v: msg.BatchView): string[][] {
  const out: string[][] = [];
  for (let b = 0; b < v.count; b++) {
    const row: string[] = [];
    for (let f = 0; f < 5; f++) {
      row.push(v.buf.toString("utf8", v.starts[b * 5 + f], v.ends[b * 5 + f]));
    }
    out.push(row);
  }
  return out;
}

/** A BET or BATCH frame of `n` made-up bets (names with an accent and a '|'). */
export function batchFrame(type: typeof MsgType.BET | typeof MsgType.BATCH, n: number): Buffer {
  const b = new msg.BatchBuilder();
  for (let i = 0; i < n; i++) {
    assert.ok(
      b.addStrings([`Nombre ${i}`, `Apellído|${i}`, String(30000000 + i), "1999-03-17", String(i)]),
    );
  }
  return b.build(type, 100 + n, 7 * n);
}

/** A BATCH frame that BatchBuilder filled with long names until the next bet did not fit. */
function fullBatchFrame(): Buffer {
  const b = new msg.BatchBuilder();
  while (b.addStrings(["x".repeat(200), "ñ".repeat(100), "1234567890", "2000-01-01", "7574"]));
  return b.build(MsgType.BATCH, 0xfffffffe, 123456);
}

/** A BATCH frame of two bets whose names are not ASCII. */
function utf8BatchFrame(): Buffer {
  const b = new msg.BatchBuilder();
  assert.ok(b.addStrings(["Añá", "B😀", "123", "2000-01-01", "42"]));
  assert.ok(b.addStrings(["C", "D", "9", "1999-12-31", "7574"]));
  return b.build(MsgType.BATCH, 1, 0);
}

/** Valid frames, named: one of each message type, plus edge sizes, non-ASCII text and flags. */
export function messageFixtures(): Array<[string, Buffer]> {
  return [
    ["HELLO", msg.encodeHello(1, { agency: 3, secret: "s" })],
    ["HELLO empty secret", msg.encodeHello(2, { agency: 1, secret: "" })],
    ["HELLO UTF-8 secret", msg.encodeHello(1, { agency: 3, secret: "sécret" })],
    ["BET", batchFrame(MsgType.BET, 1)],
    ["BATCH of 10", batchFrame(MsgType.BATCH, 10)],
    ["BATCH of non-ASCII names", utf8BatchFrame()],
    ["BATCH filled by BatchBuilder", fullBatchFrame()],
    ["frame of exactly 8192 bytes", encodeFrame(MsgType.BATCH, 1, Buffer.alloc(MAX_PAYLOAD, 0x5a))],
    ["DONE", msg.encodeDone(3, 78697)],
    ["WINNERS_REQUEST wait", msg.encodeWinnersRequest(4, true)],
    ["WINNERS_REQUEST no wait", msg.encodeWinnersRequest(5, false)],
    ["ACK", msg.encodeAck(6, 10)],
    ["WELCOME", msg.encodeWelcome(7, { committed: 0, state: msg.AgencyState.OPEN })],
    ["REJECT", msg.encodeFaultReply(MsgType.REJECT, 8, ErrorCode.INVALID_DATE, "2023-02-30", 3)],
    ["ERROR", msg.encodeFaultReply(MsgType.ERROR, 9, ErrorCode.FRAME_TOO_LARGE, "too large")],
    ["NOT_READY (empty payload)", msg.encodeNotReady(10)],
    ["WINNERS", msg.encodeWinners(11, ["30904465", "12"])[0]!],
    ["WINNERS of a short and a 10-digit document", msg.encodeWinners(1, ["123", "4567890123"])[0]!],
    ...msg
      .encodeWinners(
        12,
        Array.from({ length: 1000 }, (_, i) => String(1_000_000_000 + i)),
      )
      .map((f, i): [string, Buffer] => [`WINNERS part ${i}`, f]),
    ["raw frame with flags MORE", encodeFrame(MsgType.ACK, 0, hex("00000001"), FLAG_MORE)],
  ];
}

/** One chunk per byte. */
export function bytewise(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i++) out.push(bytes.subarray(i, i + 1));
  return out;
}

/** Cuts `bytes` at the given points (any values: reduced modulo the length, deduplicated). */
export function split(bytes: Buffer, cuts: number[]): Buffer[] {
  if (bytes.length === 0) return [];
  const points = [...new Set(cuts.map((c) => c % bytes.length))]
    .filter((c) => c > 0)
    .sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

/** Feeds the chunks to one FrameDecoder: the frames, and the fault that ended it (or of end()). */
export function decodeChunks(chunks: Buffer[]): { frames: Frame[]; fault: Fault | null } {
  const d = new FrameDecoder();
  const frames: Frame[] = [];
  for (const c of chunks) {
    d.push(c);
    for (let f = d.next(); f !== null; f = d.next()) {
      if (isFault(f)) return { frames, fault: f };
      frames.push(f as Frame);
    }
  }
  return { frames, fault: d.end() };
}

export function assertFault(v: unknown, code: number, what: string): void {
  assert.ok(isFault(v), `${what}: expected a Fault, got ${JSON.stringify(v)?.slice(0, 200)}`);
  assert.equal(
    (v as Fault).code,
    code,
    `${what}: code ${(v as Fault).code}, reason ${(v as Fault).reason}`,
  );
}
