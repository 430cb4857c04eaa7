// The file store's row encoder: one bet, given as the wire's byte ranges, as a CSV row exactly as
// Python's csv.writer (QUOTE_MINIMAL, CRLF) writes it. (The PostgreSQL store encodes the same
// byte ranges as binary COPY tuples instead: pg-rows.ts.)

import {
  F_BIRTHDATE,
  F_DOCUMENT,
  F_FIRST,
  F_LAST,
  F_NUMBER,
  FIELD_COUNT,
} from "../../../shared/src/bet.js";
import { appendCsvField } from "../../../shared/src/csv.js";
import type { BatchView } from "../../../shared/src/protocol/messages.js";
import type { SegmentAllocator } from "./segments.js";

const COMMA = 0x2c;
const CR = 0x0d;
const LF = 0x0a;

/** Copies a name, quoting it only if needed; one pass in the common (unquoted) case. */
function appendName(out: Buffer, pos: number, src: Uint8Array, s: number, e: number): number {
  const from = pos;
  for (let i = s; i < e; i++) {
    const b = src[i]!;
    if (b === 0x2c || b === 0x22 || b === 0x0d || b === 0x0a) {
      return appendCsvField(out, from, src, s, e);
    }
    out[pos++] = b;
  }
  return pos;
}

/**
 * Encodes one bet, given as wire byte ranges, as a CSV row at out[pos]. `agencyPrefix` is the
 * agency's digits followed by a comma. The number is printed as an integer (as Python's
 * int -> str does: "0042" becomes "42"). Returns the new position.
 * Hand-written byte copies: this runs once per stored bet and dominated the server's profile.
 */
export function encodeBetRow(
  out: Buffer,
  pos: number,
  agencyPrefix: Uint8Array,
  buf: Uint8Array,
  starts: ArrayLike<number>,
  ends: ArrayLike<number>,
  base: number,
  number: number,
): number {
  for (let i = 0; i < agencyPrefix.length; i++) out[pos++] = agencyPrefix[i]!;
  pos = appendName(out, pos, buf, starts[base + F_FIRST]!, ends[base + F_FIRST]!);
  out[pos++] = COMMA;
  pos = appendName(out, pos, buf, starts[base + F_LAST]!, ends[base + F_LAST]!);
  out[pos++] = COMMA;
  // documents and dates were validated as digits / YYYY-MM-DD: never need quoting
  for (let i = starts[base + F_DOCUMENT]!, e = ends[base + F_DOCUMENT]!; i < e; i++)
    out[pos++] = buf[i]!;
  out[pos++] = COMMA;
  for (let i = starts[base + F_BIRTHDATE]!, e = i + 10; i < e; i++) out[pos++] = buf[i]!;
  out[pos++] = COMMA;
  const ns = starts[base + F_NUMBER]!;
  const ne = ends[base + F_NUMBER]!;
  if (buf[ns] !== 0x30 || ne - ns === 1) {
    for (let i = ns; i < ne; i++) out[pos++] = buf[i]!; // already canonical
  } else if (number === 0) {
    out[pos++] = 0x30;
  } else {
    let digits = 0;
    for (let n = number; n > 0; n = Math.floor(n / 10)) digits++;
    let p = pos + digits - 1;
    for (let n = number; n > 0; n = Math.floor(n / 10)) out[p--] = 0x30 + (n % 10);
    pos += digits;
  }
  out[pos++] = CR;
  out[pos++] = LF;
  return pos;
}

/** Upper bound of a row's encoded size for a bet whose fields total `fieldBytes` bytes. */
export function maxRowSize(fieldBytes: number): number {
  return 11 + 2 * fieldBytes + 4 + FIELD_COUNT + 2;
}

/** Per agency, its CSV prefix ("12,"), made once. */
const prefixes = new Map<number, Buffer>();
export function agencyPrefix(agency: number): Buffer {
  let p = prefixes.get(agency);
  if (!p) {
    p = Buffer.from(`${agency},`, "latin1");
    if (prefixes.size < 100_000) prefixes.set(agency, p);
  }
  return p;
}

/**
 * Encodes a whole validated batch as CSV rows into the allocator's current segment and returns
 * them (a view of the segment: no copy). `numbers[i]` is bet i's parsed number.
 */
export function encodeBatchRows(
  alloc: SegmentAllocator,
  agency: number,
  view: BatchView,
  numbers: ArrayLike<number>,
): Buffer {
  const bytes = maxRowSize(view.buf.length) + view.count * maxRowSize(0);
  const { buf, start } = alloc.reserve(bytes);
  const prefix = agencyPrefix(agency);
  let pos = start;
  for (let b = 0; b < view.count; b++) {
    pos = encodeBetRow(buf, pos, prefix, view.buf, view.starts, view.ends, b * 5, numbers[b]!);
  }
  return alloc.take(pos);
}
