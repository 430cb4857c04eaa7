// The file store's row encoder: a BATCH (or BET) payload, as the wire carried it, validated and
// written as CSV rows exactly as Python's csv.writer (QUOTE_MINIMAL, CRLF) writes them, in one
// pass over its bytes. (The PostgreSQL store encodes binary COPY tuples instead: pg-rows.ts.)
//
// Hand-written on purpose: this runs once per stored bet. The earlier path (decode the field
// ranges, validate each bet, then copy each field into its row) cost ≈ 5,100 instructions per
// bet in the server, most of it in the copy. On Node 20 a typed-array byte loop costs ≈ 34
// instructions per byte even optimised (V8 checks every access), a DataView word ≈ 8
// (callgrind), so fields move four bytes at a time and digits are checked a word at a time.
// It only says yes or no: a refused batch is diagnosed by the slow path (batch-check.ts), whose
// verdict it must equal (test/property/rows.property.test.ts).

import { isUtf8 } from "node:buffer";
import { COMMA, CR, LF, QUOTE, ZERO } from "../../../shared/src/ascii.js";
import {
  calendarKey,
  FIELD_COUNT,
  MAX_DOCUMENT_DIGITS,
  MAX_NUMBER_DIGITS,
  MIN_BIRTH_YEAR,
} from "../../../shared/src/bet.js";
import { appendCsvField } from "../../../shared/src/csv.js";
import { MAX_FRAME } from "../../../shared/src/protocol/frame.js";
import { BATCH_PREFIX } from "../../../shared/src/protocol/messages.js";

const DASH = 0x2d;
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
  // Nearly every batch has no byte that makes Python quote a field: then no name needs a look.
  const quoting =
    p.indexOf(COMMA, dp) >= 0 ||
    p.indexOf(QUOTE, dp) >= 0 ||
    p.indexOf(CR, dp) >= 0 ||
    p.indexOf(LF, dp) >= 0;
  const src = new DataView(p.buffer, p.byteOffset, end);
  const dst = new DataView(out.buffer, out.byteOffset, out.length);
  const v: Views = { src, dst };
  const prefixLen = prefix.length;
  for (let b = 0; b < count; b++) {
    for (let i = 0; i < prefixLen; i++) out[pos++] = prefix[i]!;
    // first and last name: 1..255 bytes, quoted only when needed
    for (let f = 0; f < 2; f++) {
      const e = dp + p[lp++]!;
      if (e === dp || e > end || (p[dp]! & 0xc0) === 0x80) return -1;
      if (quoting) {
        pos = appendCsvField(out, pos, p, dp, e);
      } else {
        let i = dp;
        for (; i + 4 <= e; i += 4, pos += 4) dst.setUint32(pos, src.getUint32(i));
        for (; i < e; i++) out[pos++] = p[i]!;
      }
      out[pos++] = COMMA;
      dp = e;
    }
    // document: 1..10 digits, kept as sent (leading zeros are part of it)
    let len = p[lp++]!;
    let e = dp + len;
    if (len === 0 || len > MAX_DOCUMENT_DIGITS || e > end) return -1;
    pos = copyDigits(v, p, out, dp, e, pos);
    if (pos < 0) return -1;
    out[pos++] = COMMA;
    dp = e;
    // birthdate: a real calendar date YYYY-MM-DD from 1900 to today, as words YYYY, -MM-, DD
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
    const key = calendarKey(y, m1 * 10 + m2, d1 * 10 + d2);
    if (key < MIN_DATE || key > today) return -1;
    dst.setUint32(pos, yyyy);
    dst.setUint32(pos + 4, mm);
    dst.setUint16(pos + 8, dd);
    pos += 10;
    out[pos++] = COMMA;
    dp += 10;
    // number: 1..8 digits, written without leading zeros
    len = p[lp++]!;
    e = dp + len;
    if (len === 0 || len > MAX_NUMBER_DIGITS || e > end) return -1;
    pos =
      p[dp] === ZERO && len > 1
        ? writeNumber(p, out, dp, e, pos)
        : copyDigits(v, p, out, dp, e, pos);
    if (pos < 0) return -1;
    out[pos++] = CR;
    out[pos++] = LF;
    dp = e;
  }
  return dp === end ? pos : -1;
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
  for (; i < e; i++) {
    const c = p[i]!;
    if (c < ZERO || c > ZERO + 9) return -1;
    out[pos++] = c;
  }
  return pos;
}

/** Digits p[s..e) written as the integer they make ("0042" -> "42"); the new position or -1. */
function writeNumber(p: Buffer, out: Buffer, s: number, e: number, pos: number): number {
  let n = 0;
  for (let i = s; i < e; i++) {
    const c = p[i]! - ZERO;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
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
 * Runs the encoder over a few bets that take each of its branches (batches with and without
 * bytes to quote, a number with leading zeros, "0"), so that when V8 optimises it, every path has
 * type feedback. Without this, the course's files (78,697 bets) met each rare path only after the
 * first optimisation, and each time V8 threw the optimised code away and compiled it again: four
 * compilations of this large function, the biggest single cost of the server's run after
 * start-up (callgrind).
 */
export function primeEncoder(): void {
  const batches = [
    [
      ["Ana", "Pérez", "12345678", "1980-06-15", "7574"],
      ["Fornerón", "Álvarez", "0001", "2000-02-29", "0042"],
      ["Eva", "Ruiz", "1234567890", "1950-01-01", "0"],
    ],
    [
      ['Ana "la jefa"', "Pérez, hija", "22", "1999-12-31", "00000000"],
      ["Line\nBreak", "x;y", "7", "1900-01-01", "12"],
    ],
  ].map((bets) => {
    const flat = bets.flat().map((f) => Buffer.from(f));
    const head = Buffer.alloc(BATCH_PREFIX);
    head.writeUInt16BE(bets.length, 4);
    return Buffer.concat([head, Buffer.from(flat.map((f) => f.length)), ...flat]);
  });
  const prefix = agencyPrefix(1);
  const out = Buffer.allocUnsafe(maxRowsSize(MAX_FRAME, 100, prefix.length));
  for (let i = 0; i < 12; i++) for (const b of batches) encodeBatchCsv(b, out, 0, prefix, 99991231);
}
