// The file store's row encoder: a BATCH (or BET) payload, as the wire carried it, validated and
// written as CSV rows exactly as Python's csv.writer (QUOTE_MINIMAL, CRLF) writes them, in one
// pass over its bytes. (The PostgreSQL store encodes binary COPY tuples instead: pg-rows.ts.)
//
// Hand-written byte loops on purpose: this runs once per stored bet. The earlier path (decode
// the field ranges, validate each bet, then copy each field into its row) cost ≈ 300 ns per
// bet in the server's profile at 5 × 1M, most of it in the copy; this one ≈ 110 ns (measured
// on the same batches: 100 course-shaped bets each). It only says yes or no: a refused batch
// is diagnosed by the slow path (batch-check.ts), whose verdict it must equal
// (test/property/rows.property.test.ts).

import { isUtf8 } from "node:buffer";
import {
  FIELD_COUNT,
  MAX_DOCUMENT_DIGITS,
  MAX_NUMBER_DIGITS,
  MIN_BIRTH_YEAR,
} from "../../../shared/src/bet.js";
import { appendCsvField } from "../../../shared/src/csv.js";
import { BATCH_PREFIX } from "../../../shared/src/protocol/messages.js";

const COMMA = 0x2c;
const QUOTE = 0x22;
const CR = 0x0d;
const LF = 0x0a;
const ZERO = 0x30;
const DASH = 0x2d;

/** Bytes that make Python's csv module quote a field. */
const NEEDS_QUOTE = new Uint8Array(256);
for (const b of [COMMA, QUOTE, CR, LF]) NEEDS_QUOTE[b] = 1;

const MONTH_DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const MIN_DATE = MIN_BIRTH_YEAR * 10000;

/** Room to reserve for a payload's rows: names may double and gain quotes. */
export function maxRowsSize(payloadBytes: number, count: number, prefixBytes: number): number {
  return 2 * payloadBytes + count * (prefixBytes + 10);
}

/**
 * Validates the payload's bets and writes them as CSV rows at out[pos]; returns the end of the
 * rows, or -1 when the batch is refused (nothing after `pos` is meaningful then). `prefix` is
 * the agency's digits and a comma; `today` is the latest birthdate accepted (yyyymmdd). The
 * caller reserves `maxRowsSize(...)` bytes. Numbers are printed as integers, as Python's
 * int -> str does ("0042" becomes "42").
 */
export function encodeBatchCsv(
  p: Buffer,
  out: Buffer,
  pos: number,
  prefix: Uint8Array,
  today: number,
): number {
  const end = p.length;
  if (end < BATCH_PREFIX) return -1;
  const count = (p[4]! << 8) | p[5]!;
  let lp = BATCH_PREFIX; // the next field's length byte
  let dp = BATCH_PREFIX + count * FIELD_COUNT; // the next field's first byte
  if (count === 0 || dp > end) return -1;
  // One UTF-8 check for all field bytes; a name may not start with a continuation byte, so each
  // field is valid UTF-8 on its own (as decodeBatch checks).
  if (!isUtf8(p.subarray(dp))) return -1;
  const prefixLen = prefix.length;
  for (let b = 0; b < count; b++) {
    for (let i = 0; i < prefixLen; i++) out[pos++] = prefix[i]!;
    // first and last name: 1..255 bytes, quoted only when needed
    for (let f = 0; f < 2; f++) {
      const e = dp + p[lp++]!;
      if (e === dp || e > end || (p[dp]! & 0xc0) === 0x80) return -1;
      const from = pos;
      let quote = 0;
      for (let i = dp; i < e; i++) {
        const c = p[i]!;
        quote |= NEEDS_QUOTE[c]!;
        out[pos++] = c;
      }
      if (quote !== 0) pos = appendCsvField(out, from, p, dp, e); // rare: rewritten quoted
      out[pos++] = COMMA;
      dp = e;
    }
    // document: 1..10 digits, kept as sent (leading zeros are part of it)
    let len = p[lp++]!;
    let e = dp + len;
    if (len === 0 || len > MAX_DOCUMENT_DIGITS || e > end) return -1;
    for (let i = dp; i < e; i++) {
      const c = p[i]!;
      if (c - ZERO > 9 || c < ZERO) return -1;
      out[pos++] = c;
    }
    out[pos++] = COMMA;
    dp = e;
    // birthdate: a real calendar date YYYY-MM-DD from 1900 to today
    if (p[lp++] !== 10 || dp + 10 > end || p[dp + 4] !== DASH || p[dp + 7] !== DASH) return -1;
    let y = 0;
    for (let i = dp; i < dp + 4; i++) {
      const d = p[i]! - ZERO;
      if (d < 0 || d > 9) return -1;
      y = y * 10 + d;
    }
    const m1 = p[dp + 5]! - ZERO;
    const m2 = p[dp + 6]! - ZERO;
    const d1 = p[dp + 8]! - ZERO;
    const d2 = p[dp + 9]! - ZERO;
    if (m1 < 0 || m1 > 9 || m2 < 0 || m2 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return -1;
    const m = m1 * 10 + m2;
    const d = d1 * 10 + d2;
    if (m < 1 || m > 12 || d < 1) return -1;
    const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
    if (d > (m === 2 && leap ? 29 : MONTH_DAYS[m]!)) return -1;
    const key = y * 10000 + m * 100 + d;
    if (key < MIN_DATE || key > today) return -1;
    for (let i = dp; i < dp + 10; i++) out[pos++] = p[i]!;
    out[pos++] = COMMA;
    dp += 10;
    // number: 1..8 digits, written without leading zeros
    len = p[lp++]!;
    e = dp + len;
    if (len === 0 || len > MAX_NUMBER_DIGITS || e > end) return -1;
    if (p[dp] !== ZERO || len === 1) {
      for (let i = dp; i < e; i++) {
        const c = p[i]!;
        if (c - ZERO > 9 || c < ZERO) return -1;
        out[pos++] = c;
      }
    } else {
      let n = 0;
      for (let i = dp; i < e; i++) {
        const c = p[i]! - ZERO;
        if (c < 0 || c > 9) return -1;
        n = n * 10 + c;
      }
      pos = writeInt(out, pos, n);
    }
    out[pos++] = CR;
    out[pos++] = LF;
    dp = e;
  }
  return dp === end ? pos : -1;
}

/** n >= 0 in decimal at out[pos]; returns the new position. */
function writeInt(out: Buffer, pos: number, n: number): number {
  if (n === 0) {
    out[pos] = ZERO;
    return pos + 1;
  }
  let digits = 0;
  for (let k = n; k > 0; k = Math.floor(k / 10)) digits++;
  let q = pos + digits - 1;
  for (let k = n; k > 0; k = Math.floor(k / 10)) out[q--] = ZERO + (k % 10);
  return pos + digits;
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
 * Runs the encoder over a few bets that take each of its branches (a quoted name, a number with
 * leading zeros, "0"), so that when V8 optimises it, every path has type feedback. Without this,
 * the course's files (78,697 bets) met each rare path only after the first optimisation, and each
 * time V8 threw the optimised code away and compiled it again: four compilations of this large
 * function, the biggest single cost of the server's run after start-up (callgrind).
 */
export function primeEncoder(): void {
  const bets = [
    ["Ana", "Pérez", "12345678", "1980-06-15", "7574"],
    ['Ana "la jefa"', "Pérez, hija", "0001", "2000-02-29", "0042"],
    ["Line\nBreak", "x;y", "1234567890", "1999-12-31", "0"],
    ["Fornerón", "Álvarez", "22", "1950-01-01", "00000000"],
  ].map((fields) => fields.map((f) => Buffer.from(f)));
  const head = Buffer.alloc(BATCH_PREFIX);
  head.writeUInt16BE(bets.length, 4);
  const flat = bets.flat();
  const payload = Buffer.concat([head, Buffer.from(flat.map((f) => f.length)), ...flat]);
  const prefix = agencyPrefix(1);
  const out = Buffer.allocUnsafe(maxRowsSize(payload.length, bets.length, prefix.length));
  for (let i = 0; i < 12; i++) encodeBatchCsv(payload, out, 0, prefix, 99991231);
}
