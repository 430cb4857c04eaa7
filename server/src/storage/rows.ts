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
  // Nearly every batch has no byte that needs quoting: then the word-wise path (below).
  if (
    p.indexOf(COMMA, dp) < 0 &&
    p.indexOf(QUOTE, dp) < 0 &&
    p.indexOf(CR, dp) < 0 &&
    p.indexOf(LF, dp) < 0
  ) {
    return encodeUnquoted(p, out, pos, prefix, today, count, dp);
  }
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
    pos = copyDigitBytes(p, out, dp, e, pos);
    if (pos < 0) return -1;
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
    if (!birthdateOk(y, m1 * 10 + m2, d1 * 10 + d2, today)) return -1;
    for (let i = dp; i < dp + 10; i++) out[pos++] = p[i]!;
    out[pos++] = COMMA;
    dp += 10;
    // number: 1..8 digits, written without leading zeros
    len = p[lp++]!;
    e = dp + len;
    if (len === 0 || len > MAX_NUMBER_DIGITS || e > end) return -1;
    pos = numberAndEnd(null, p, out, dp, e, pos);
    if (pos < 0) return -1;
    dp = e;
  }
  return dp === end ? pos : -1;
}

/**
 * encodeBatchCsv for a batch none of whose field bytes needs quoting: the same checks and bytes,
 * but fields move four bytes at a time through DataViews. On Node 20 a typed-array byte loop
 * costs ≈ 34 instructions per byte even optimised (V8 checks every access), a DataView word
 * ≈ 8 per byte (callgrind); per bet the encoder went from ≈ 2,100 to ≈ 700 instructions.
 */
function encodeUnquoted(
  p: Buffer,
  out: Buffer,
  pos: number,
  prefix: Uint8Array,
  today: number,
  count: number,
  dataStart: number,
): number {
  const end = p.length;
  const src = new DataView(p.buffer, p.byteOffset, end);
  const dst = new DataView(out.buffer, out.byteOffset, out.length);
  const views: Views = { src, dst };
  const prefixLen = prefix.length;
  let lp = BATCH_PREFIX;
  let dp = dataStart;
  for (let b = 0; b < count; b++) {
    for (let i = 0; i < prefixLen; i++) out[pos++] = prefix[i]!;
    for (let f = 0; f < 2; f++) {
      const e = dp + p[lp++]!;
      if (e === dp || e > end || (p[dp]! & 0xc0) === 0x80) return -1;
      let i = dp;
      for (; i + 4 <= e; i += 4, pos += 4) dst.setUint32(pos, src.getUint32(i));
      for (; i < e; i++) out[pos++] = p[i]!;
      out[pos++] = COMMA;
      dp = e;
    }
    let len = p[lp++]!;
    let e = dp + len;
    if (len === 0 || len > MAX_DOCUMENT_DIGITS || e > end) return -1;
    pos = copyDigits(views, p, out, dp, e, pos);
    if (pos < 0) return -1;
    out[pos++] = COMMA;
    dp = e;
    // YYYY, -MM-, DD as three words
    if (p[lp++] !== 10 || dp + 10 > end) return -1;
    const yyyy = src.getUint32(dp);
    const mm = src.getUint32(dp + 4);
    const dd = src.getUint16(dp + 8);
    if (!digits4(yyyy) || mm >>> 24 !== DASH || (mm & 0xff) !== DASH) return -1;
    const m1 = ((mm >>> 16) & 0xff) - ZERO;
    const m2 = ((mm >>> 8) & 0xff) - ZERO;
    const d1 = (dd >>> 8) - ZERO;
    const d2 = (dd & 0xff) - ZERO;
    if (m1 < 0 || m1 > 9 || m2 < 0 || m2 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return -1;
    const y =
      ((yyyy >>> 24) - ZERO) * 1000 +
      (((yyyy >>> 16) & 0xff) - ZERO) * 100 +
      (((yyyy >>> 8) & 0xff) - ZERO) * 10 +
      ((yyyy & 0xff) - ZERO);
    if (!birthdateOk(y, m1 * 10 + m2, d1 * 10 + d2, today)) return -1;
    dst.setUint32(pos, yyyy);
    dst.setUint32(pos + 4, mm);
    dst.setUint16(pos + 8, dd);
    pos += 10;
    out[pos++] = COMMA;
    dp += 10;
    len = p[lp++]!;
    e = dp + len;
    if (len === 0 || len > MAX_NUMBER_DIGITS || e > end) return -1;
    pos = numberAndEnd(views, p, out, dp, e, pos);
    if (pos < 0) return -1;
    dp = e;
  }
  return dp === end ? pos : -1;
}

/**
 * The number p[s..e) (already known to be 1..8 bytes) without leading zeros, then the row's CRLF;
 * word-wise when given the DataViews. Returns the new position or -1.
 */
function numberAndEnd(v: Views | null, p: Buffer, out: Buffer, s: number, e: number, pos: number) {
  if (p[s] === ZERO && e - s > 1) pos = writeNumber(p, out, s, e, pos);
  else pos = v ? copyDigits(v, p, out, s, e, pos) : copyDigitBytes(p, out, s, e, pos);
  if (pos < 0) return -1;
  out[pos++] = CR;
  out[pos++] = LF;
  return pos;
}

/** The payload and the output, as DataViews for word-wise access. */
interface Views {
  src: DataView;
  dst: DataView;
}

/** Four ASCII digits in one big-endian word. */
function digits4(w: number): boolean {
  return (w & 0xf0f0f0f0) === 0x30303030 && ((w + 0x06060606) & 0xf0f0f0f0) === 0x30303030;
}

/** Copies p[s..e) to out[pos] if every byte is a digit; returns the new position or -1. */
function copyDigits(v: Views, p: Buffer, out: Buffer, s: number, e: number, pos: number): number {
  const { src, dst } = v;
  let i = s;
  for (; i + 4 <= e; i += 4, pos += 4) {
    const w = src.getUint32(i);
    if (!digits4(w)) return -1;
    dst.setUint32(pos, w);
  }
  return copyDigitBytes(p, out, i, e, pos);
}

/** copyDigits a byte at a time. */
function copyDigitBytes(p: Buffer, out: Buffer, s: number, e: number, pos: number): number {
  for (let i = s; i < e; i++) {
    const c = p[i]!;
    if (c < ZERO || c > ZERO + 9) return -1;
    out[pos++] = c;
  }
  return pos;
}

/** A real calendar date from 1900 to today (yyyymmdd). */
function birthdateOk(y: number, m: number, d: number, today: number): boolean {
  if (m < 1 || m > 12 || d < 1) return false;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  if (d > (m === 2 && leap ? 29 : MONTH_DAYS[m]!)) return false;
  const key = y * 10000 + m * 100 + d;
  return key >= MIN_DATE && key <= today;
}

/** Digits p[s..e) written as the integer they make ("0042" -> "42"); the new position or -1. */
function writeNumber(p: Buffer, out: Buffer, s: number, e: number, pos: number): number {
  let n = 0;
  for (let i = s; i < e; i++) {
    const c = p[i]! - ZERO;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return writeInt(out, pos, n);
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
