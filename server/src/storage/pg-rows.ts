// The PostgreSQL store's row encoder: a validated batch, from the wire's byte ranges straight to
// COPY's binary tuple format (no text for the server to parse: agency, birthdate and number go
// as integers; names and document as the UTF-8 bytes they arrived as, never escaped).
// Measured on this machine, binary COPY takes the same rows 10–20 % faster than COPY csv, and
// the server's CPU is what the whole lottery shares.

import { F_BIRTHDATE, F_DOCUMENT, F_FIRST, F_LAST, FIELD_COUNT } from "../../../shared/src/bet.js";
import type { BatchView } from "../../../shared/src/protocol/messages.js";
import type { SegmentAllocator } from "./segments.js";

/** Starts every binary COPY stream: signature, flags, header extension length. */
export const COPY_BINARY_HEADER = Buffer.concat([
  Buffer.from("PGCOPY\n\xff\r\n\0", "latin1"),
  Buffer.alloc(8),
]);
/** Ends it: a tuple with -1 fields. */
export const COPY_BINARY_TRAILER = Buffer.from([0xff, 0xff]);

const FIELDS = 6;
/** Per tuple: field count, six lengths, and the three int4 values. */
const TUPLE_OVERHEAD = 2 + 4 * FIELDS + 3 * 4;

/** Days from 1970-01-01 to the date (proleptic Gregorian; H. Hinnant's days_from_civil). */
export function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** PostgreSQL's date epoch is 2000-01-01. */
const PG_EPOCH_DAYS = daysFromCivil(2000, 1, 1);

function digits(buf: Uint8Array, s: number, n: number): number {
  let v = 0;
  for (let i = s; i < s + n; i++) v = v * 10 + buf[i]! - 0x30;
  return v;
}

/** A text field: its length, then its bytes as they are. */
function text(out: Buffer, pos: number, src: Buffer, s: number, e: number): number {
  out.writeUInt32BE(e - s, pos);
  pos += 4;
  if (e - s < 32) {
    for (let i = s; i < e; i++) out[pos++] = src[i]!;
    return pos;
  }
  return pos + src.copy(out, pos, s, e);
}

/**
 * Encodes a validated batch as binary COPY tuples (without the stream's header and trailer)
 * into the allocator's current segment and returns them. `numbers[i]` is bet i's number.
 */
export function encodeBatchBinary(
  alloc: SegmentAllocator,
  agency: number,
  view: BatchView,
  numbers: ArrayLike<number>,
): Buffer {
  const { buf: src, starts, ends, count } = view;
  const bytes = count * TUPLE_OVERHEAD + src.length;
  const { buf: out, start } = alloc.reserve(bytes);
  let pos = start;
  for (let b = 0, base = 0; b < count; b++, base += FIELD_COUNT) {
    out.writeUInt16BE(FIELDS, pos);
    out.writeUInt32BE(4, pos + 2);
    out.writeInt32BE(agency, pos + 6);
    pos += 10;
    pos = text(out, pos, src, starts[base + F_FIRST]!, ends[base + F_FIRST]!);
    pos = text(out, pos, src, starts[base + F_LAST]!, ends[base + F_LAST]!);
    pos = text(out, pos, src, starts[base + F_DOCUMENT]!, ends[base + F_DOCUMENT]!);
    const ds = starts[base + F_BIRTHDATE]!; // validated YYYY-MM-DD
    const days =
      daysFromCivil(digits(src, ds, 4), digits(src, ds + 5, 2), digits(src, ds + 8, 2)) -
      PG_EPOCH_DAYS;
    out.writeUInt32BE(4, pos);
    out.writeInt32BE(days, pos + 4);
    out.writeUInt32BE(4, pos + 8);
    out.writeInt32BE(numbers[b]!, pos + 12);
    pos += 16;
  }
  return alloc.take(pos);
}
