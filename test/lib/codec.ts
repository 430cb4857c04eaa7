// The codec test kit: byte helpers and hand-built payloads shared by the unit and property tests of
// the protocol, the link and the row encoder (each was written in three places before).

import assert from "node:assert/strict";
import { type Fault, isFault } from "../../shared/src/errors.js";
import { FrameDecoder } from "../../shared/src/protocol/decoder.js";
import { type Frame, HEADER_SIZE } from "../../shared/src/protocol/frame.js";
import { BATCH_PREFIX } from "../../shared/src/protocol/messages.js";

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
  const head = Buffer.alloc(BATCH_PREFIX);
  head.writeUInt32BE(first, 0);
  head.writeUInt16BE(bets.length, 4);
  const lens = Buffer.from(bets.flatMap((b) => b.map((f) => f.length)));
  return Buffer.concat([head, lens, ...bets.flat()]);
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
