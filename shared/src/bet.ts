// The bet model and its validation. Validation works on UTF-8 bytes (the wire form) so that the
// server's hot path never builds strings; the client uses the very same checks before sending,
// so a well-behaved agency is never rejected.

import { ErrorCode, type Fault, fault } from "./errors.js";

export const LOTTERY_WINNER_NUMBER = 7574;
export const MAX_FIELD_BYTES = 255; // fields travel with a u8 length
export const MAX_DOCUMENT_DIGITS = 10;
export const MAX_NUMBER_DIGITS = 8;
export const MIN_BIRTH_YEAR = 1900;

export interface Bet {
  agency: number;
  first_name: string;
  last_name: string;
  document: string;
  birthdate: string; // YYYY-MM-DD
  number: number;
}

/** Field order on the wire and in the agency files. */
export const BET_FIELDS = ["first_name", "last_name", "document", "birthdate", "number"] as const;
export const FIELD_COUNT = 5;
export const F_FIRST = 0;
export const F_LAST = 1;
export const F_DOCUMENT = 2;
export const F_BIRTHDATE = 3;
export const F_NUMBER = 4;

export function has_won(bet: Bet): boolean {
  return bet.number === LOTTERY_WINNER_NUMBER;
}

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

/** Today as the integer yyyymmdd, computed at most once per minute of `now`. */
let todayCache = 0;
let todayCachedMinute = -1;
export function todayKey(now = Date.now()): number {
  const minute = Math.floor(now / 60_000);
  if (minute !== todayCachedMinute) {
    const d = new Date(now);
    // Accept the date of the most advanced time zone (UTC+14) so no agency's "today" is future.
    const ahead = new Date(d.getTime() + 14 * 3_600_000);
    todayCache =
      ahead.getUTCFullYear() * 10000 + (ahead.getUTCMonth() + 1) * 100 + ahead.getUTCDate();
    todayCachedMinute = minute;
  }
  return todayCache;
}

function digit(b: number): number {
  return b >= 0x30 && b <= 0x39 ? b - 0x30 : -1;
}

/** Parses `YYYY-MM-DD` at buf[start..end): yyyymmdd, or -1 when not a real calendar date. */
export function parseDateBytes(buf: Uint8Array, start: number, end: number): number {
  if (end - start !== 10 || buf[start + 4] !== 0x2d || buf[start + 7] !== 0x2d) return -1;
  let y = 0;
  for (let i = start; i < start + 4; i++) {
    const d = digit(buf[i]!);
    if (d < 0) return -1;
    y = y * 10 + d;
  }
  const m1 = digit(buf[start + 5]!);
  const m2 = digit(buf[start + 6]!);
  const d1 = digit(buf[start + 8]!);
  const d2 = digit(buf[start + 9]!);
  if (m1 < 0 || m2 < 0 || d1 < 0 || d2 < 0) return -1;
  return calendarKey(y, m1 * 10 + m2, d1 * 10 + d2);
}

/** yyyymmdd of year y, month m, day d, or -1 when that day does not exist. */
export function calendarKey(y: number, m: number, d: number): number {
  if (m < 1 || m > 12 || d < 1) return -1;
  const max = m === 2 && isLeap(y) ? 29 : DAYS[m - 1]!;
  if (d > max) return -1;
  return y * 10000 + m * 100 + d;
}

/** Parses the digits at buf[start..end) as a bet number; -1 when not 1..8 ASCII digits. */
export function parseNumberBytes(buf: Uint8Array, start: number, end: number): number {
  return parseDigits(buf, start, end, MAX_NUMBER_DIGITS);
}

/** The 1..maxDigits ASCII digits at buf[start..end) as an integer, or -1. */
export function parseDigits(
  buf: Uint8Array,
  start: number,
  end: number,
  maxDigits: number,
): number {
  if (end <= start || end - start > maxDigits) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = digit(buf[i]!);
    if (d < 0) return -1;
    n = n * 10 + d;
  }
  return n;
}

function allDigits(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (b < 0x30 || b > 0x39) return false;
  }
  return true;
}

/**
 * Whether a bet is valid, given what a scan of its fields found: the byte lengths of the two
 * names, of the document and of the number (both already known to be ASCII digits only) and the
 * birthdate as `parseDateBytes` parsed it. The agency's one-pass scanner (client/src/scan.ts)
 * accepts rows with this; validateBetFields accepts with it too and only diagnoses the bets it
 * refuses (test/property/scan.property.test.ts holds the two verdicts together).
 */
export function acceptsBet(
  first: number,
  last: number,
  document: number,
  date: number,
  number: number,
  today: number,
): boolean {
  return (
    first >= 1 &&
    first <= MAX_FIELD_BYTES &&
    last >= 1 &&
    last <= MAX_FIELD_BYTES &&
    document >= 1 &&
    document <= MAX_DOCUMENT_DIGITS &&
    date >= MIN_BIRTH_YEAR * 10000 &&
    date <= today &&
    number >= 1 &&
    number <= MAX_NUMBER_DIGITS
  );
}

/**
 * Validates one bet given as five byte ranges (first_name, last_name, document, birthdate,
 * number). UTF-8 well-formedness of the names is checked by the caller over the whole batch
 * (see `protocol/messages.ts`); here: non-empty, sizes, digits, a real past date.
 * Returns the parsed number (>= 0) or a Fault.
 */
export function validateBetFields(
  buf: Uint8Array,
  starts: ArrayLike<number>,
  ends: ArrayLike<number>,
  base: number,
  today: number,
): number | Fault {
  const ds = starts[base + F_DOCUMENT]!;
  const de = ends[base + F_DOCUMENT]!;
  const ns = starts[base + F_NUMBER]!;
  const ne = ends[base + F_NUMBER]!;
  const n = parseNumberBytes(buf, ns, ne);
  if (
    n >= 0 &&
    allDigits(buf, ds, de) &&
    acceptsBet(
      ends[base + F_FIRST]! - starts[base + F_FIRST]!,
      ends[base + F_LAST]! - starts[base + F_LAST]!,
      de - ds,
      parseDateBytes(buf, starts[base + F_BIRTHDATE]!, ends[base + F_BIRTHDATE]!),
      ne - ns,
      today,
    )
  ) {
    return n;
  }
  return diagnoseBet(buf, starts, ends, base, today);
}

/** Which rule a bet breaks, checked in a fixed order (that order decides the code). */
function diagnoseBet(
  ...[buf, starts, ends, base, today]: Parameters<typeof validateBetFields>
): number | Fault {
  for (let f = 0; f < FIELD_COUNT; f++) {
    const len = ends[base + f]! - starts[base + f]!;
    if (len === 0) return fault(ErrorCode.EMPTY_FIELD, `empty ${BET_FIELDS[f]}`);
    if (len > MAX_FIELD_BYTES) return fault(ErrorCode.INVALID_NAME, `${BET_FIELDS[f]} too long`);
  }
  const ds = starts[base + F_DOCUMENT]!;
  const de = ends[base + F_DOCUMENT]!;
  if (de - ds > MAX_DOCUMENT_DIGITS || !allDigits(buf, ds, de)) {
    return fault(ErrorCode.INVALID_DOCUMENT, "document must be 1-10 digits");
  }
  const date = parseDateBytes(buf, starts[base + F_BIRTHDATE]!, ends[base + F_BIRTHDATE]!);
  if (date < 0 || date < MIN_BIRTH_YEAR * 10000) {
    return fault(ErrorCode.INVALID_DATE, "birthdate must be a real date YYYY-MM-DD");
  }
  if (date > today) return fault(ErrorCode.FUTURE_DATE, "birthdate is in the future");
  const n = parseNumberBytes(buf, starts[base + F_NUMBER]!, ends[base + F_NUMBER]!);
  if (n < 0) return fault(ErrorCode.INVALID_NUMBER, "number must be 1-8 digits");
  return n;
}

/** String-level validation (env bets, tests): same rules via the byte-level checks. */
export function validateBet(fields: readonly string[]): Fault | null {
  const bufs = fields.map((f) => Buffer.from(f, "utf8"));
  const all = Buffer.concat(bufs);
  const starts: number[] = [];
  const ends: number[] = [];
  let pos = 0;
  for (const b of bufs) {
    starts.push(pos);
    pos += b.length;
    ends.push(pos);
  }
  if (fields.length !== FIELD_COUNT) {
    return fault(ErrorCode.MALFORMED, `expected ${FIELD_COUNT} fields, got ${fields.length}`);
  }
  const r = validateBetFields(all, starts, ends, 0, todayKey());
  return typeof r === "number" ? null : r;
}
