// Bet validation (on the wire bytes and on strings) and has_won.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  acceptsBet,
  type Bet,
  calendarKey,
  has_won,
  LOTTERY_WINNER_NUMBER,
  parseDateBytes,
  parseNumberBytes,
  todayKey,
  validateBet,
  validateBetFields,
} from "../../shared/src/bet.js";
import { ErrorCode } from "../../shared/src/errors.js";

const row = (line: string) => line.split(",");

function code(fields: string[]): number | null {
  return validateBet(fields)?.code ?? null;
}

function dateKey(s: string): number {
  const b = Buffer.from(s);
  return parseDateBytes(b, 0, b.length);
}

describe("validateBet accepts the course's rows", () => {
  for (const line of [
    "Santiago Lionel,Lorca,30904465,1999-03-17,7574",
    "A,B,00000000,2000-01-01,0",
    "Fornerón,Álvarez,1,1900-01-01,99999999",
    "Ana María,O'Neil,9999999999,1985-12-31,00000042",
    "😀,x;y|z:w,12,2024-02-29,1",
  ]) {
    it(line, () => assert.equal(validateBet(row(line)), null));
  }

  it("names of exactly 255 UTF-8 bytes", () => {
    assert.equal(
      validateBet(["x".repeat(255), `${"ñ".repeat(127)}x`, "1", "2000-01-01", "1"]),
      null,
    );
  });

  it("today's date is not in the future", () => {
    const d = new Date();
    const iso = `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}-${String(d.getUTCDate()).padStart(2, "0")}`;
    assert.equal(validateBet(["A", "B", "1", iso, "1"]), null);
  });
});

describe("validateBet rejects bad rows with the right code", () => {
  const cases: Array<[string, string[], number]> = [
    ["2023-02-30", row("A,B,1,2023-02-30,1"), ErrorCode.INVALID_DATE],
    ["month 13", row("A,B,1,1999-13-01,1"), ErrorCode.INVALID_DATE],
    ["month 00", row("A,B,1,1999-00-10,1"), ErrorCode.INVALID_DATE],
    ["day 00", row("A,B,1,1999-01-00,1"), ErrorCode.INVALID_DATE],
    ["day 32", row("A,B,1,1999-01-32,1"), ErrorCode.INVALID_DATE],
    ["April 31", row("A,B,1,1999-04-31,1"), ErrorCode.INVALID_DATE],
    ["1900-02-29 (not a leap year)", row("A,B,1,1900-02-29,1"), ErrorCode.INVALID_DATE],
    ["2023-02-29", row("A,B,1,2023-02-29,1"), ErrorCode.INVALID_DATE],
    ["date with slashes", row("A,B,1,1999/03/17,1"), ErrorCode.INVALID_DATE],
    ["date without padding", row("A,B,1,1999-3-17,1"), ErrorCode.INVALID_DATE],
    ["date with letters", row("A,B,1,19x9-03-17,1"), ErrorCode.INVALID_DATE],
    ["date DD-MM-YYYY", row("A,B,1,17-03-1999,1"), ErrorCode.INVALID_DATE],
    ["date with time", row("A,B,1,1999-03-17T00:00,1"), ErrorCode.INVALID_DATE],
    ["year before 1900", row("A,B,1,1899-12-31,1"), ErrorCode.INVALID_DATE],
    ["future date", row("A,B,1,2999-01-01,1"), ErrorCode.FUTURE_DATE],
    ["number abc", row("A,B,1,2000-01-01,abc"), ErrorCode.INVALID_NUMBER],
    ["number with 9 digits", row("A,B,1,2000-01-01,123456789"), ErrorCode.INVALID_NUMBER],
    ["negative number", row("A,B,1,2000-01-01,-1"), ErrorCode.INVALID_NUMBER],
    ["number with a sign", row("A,B,1,2000-01-01,+1"), ErrorCode.INVALID_NUMBER],
    ["decimal number", row("A,B,1,2000-01-01,1.5"), ErrorCode.INVALID_NUMBER],
    ["number with spaces", row("A,B,1,2000-01-01, 1"), ErrorCode.INVALID_NUMBER],
    ["empty first name", row(",B,1,2000-01-01,1"), ErrorCode.EMPTY_FIELD],
    ["empty last name", row("A,,1,2000-01-01,1"), ErrorCode.EMPTY_FIELD],
    ["empty document", row("A,B,,2000-01-01,1"), ErrorCode.EMPTY_FIELD],
    ["empty date", row("A,B,1,,1"), ErrorCode.EMPTY_FIELD],
    ["empty number", row("A,B,1,2000-01-01,"), ErrorCode.EMPTY_FIELD],
    ["document with letters", row("A,B,30904a65,2000-01-01,1"), ErrorCode.INVALID_DOCUMENT],
    ["document with a dot", row("A,B,30.904.465,2000-01-01,1"), ErrorCode.INVALID_DOCUMENT],
    ["document of 11 digits", row("A,B,12345678901,2000-01-01,1"), ErrorCode.INVALID_DOCUMENT],
    ["name over 255 bytes", ["x".repeat(256), "B", "1", "2000-01-01", "1"], ErrorCode.INVALID_NAME],
    [
      "name over 255 bytes (UTF-8)",
      ["A", "ñ".repeat(128), "1", "2000-01-01", "1"],
      ErrorCode.INVALID_NAME,
    ],
    ["4 fields", row("A,B,1,2000-01-01"), ErrorCode.MALFORMED],
    ["6 fields", row("1,A,B,1,2000-01-01,1"), ErrorCode.MALFORMED],
  ];
  for (const [name, fields, want] of cases) {
    it(name, () => assert.equal(code(fields), want));
  }
});

describe("calendar", () => {
  it("leap years: 2000-02-29 ok, 1900-02-29 not, 2024-02-29 ok, 2023-02-29 not", () => {
    assert.equal(dateKey("2000-02-29"), 20000229);
    assert.equal(dateKey("1900-02-29"), -1);
    assert.equal(dateKey("2024-02-29"), 20240229);
    assert.equal(dateKey("2023-02-29"), -1);
    assert.equal(dateKey("1996-02-29"), 19960229);
    assert.equal(dateKey("2100-02-29"), -1);
    assert.equal(dateKey("2000-02-30"), -1);
    assert.equal(validateBet(row("A,B,1,2000-02-29,1")), null);
    assert.equal(validateBet(row("A,B,1,2024-02-29,1")), null);
  });

  it("every day of 1999 and 2000 matches the JavaScript calendar", () => {
    for (const year of [1999, 2000]) {
      for (let m = 1; m <= 12; m++) {
        for (let d = 1; d <= 31; d++) {
          const text = `${year}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
          const js = new Date(Date.UTC(year, m - 1, d));
          const real = js.getUTCMonth() === m - 1;
          assert.equal(dateKey(text), real ? year * 10000 + m * 100 + d : -1, text);
        }
      }
    }
  });

  it("todayKey is yyyymmdd of a plausible today", () => {
    const k = todayKey();
    const now = new Date();
    const utc = now.getUTCFullYear() * 10000 + (now.getUTCMonth() + 1) * 100 + now.getUTCDate();
    assert.ok(k >= utc, `${k} >= ${utc}`);
    assert.ok(k - utc <= 8900, "at most one day ahead (month/year roll-over included)");
  });
});

describe("byte-level parsers", () => {
  it("parseNumberBytes", () => {
    const n = (s: string) => parseNumberBytes(Buffer.from(s), 0, Buffer.byteLength(s));
    assert.equal(n("0"), 0);
    assert.equal(n("7574"), 7574);
    assert.equal(n("00000042"), 42);
    assert.equal(n("99999999"), 99999999);
    assert.equal(n(""), -1);
    assert.equal(n("123456789"), -1);
    assert.equal(n("12a"), -1);
    assert.equal(n("٣"), -1, "non-ASCII digits");
  });

  it("validateBetFields works on ranges inside a larger buffer", () => {
    const buf = Buffer.from("xxAnaLi1232000-01-017574yy");
    const starts = [0, 0, 2, 5, 7, 10, 20];
    const ends = [0, 0, 5, 7, 10, 20, 24];
    assert.equal(validateBetFields(buf, starts, ends, 2, 20991231), 7574);
    const f = validateBetFields(buf, starts, ends, 2, 19991231);
    assert.equal(typeof f === "object" && f.code, ErrorCode.FUTURE_DATE);
  });
});

describe("acceptsBet and calendarKey (the agency's one-pass scanner uses them)", () => {
  it("acceptsBet: every limit, on both sides", () => {
    const ok = (a: number, b: number, d: number, t: number, n: number) =>
      acceptsBet(a, b, d, t, n, 20240615);
    assert.equal(ok(1, 1, 1, 19000101, 1), true);
    assert.equal(ok(255, 255, 10, 20240615, 8), true);
    assert.equal(ok(0, 1, 1, 20000101, 1), false);
    assert.equal(ok(256, 1, 1, 20000101, 1), false);
    assert.equal(ok(1, 0, 1, 20000101, 1), false);
    assert.equal(ok(1, 256, 1, 20000101, 1), false);
    assert.equal(ok(1, 1, 0, 20000101, 1), false);
    assert.equal(ok(1, 1, 11, 20000101, 1), false);
    assert.equal(ok(1, 1, 1, 18991231, 1), false);
    assert.equal(ok(1, 1, 1, 20240616, 1), false);
    assert.equal(ok(1, 1, 1, -1, 1), false);
    assert.equal(ok(1, 1, 1, 20000101, 0), false);
    assert.equal(ok(1, 1, 1, 20000101, 9), false);
  });

  it("calendarKey is the calendar parseDateBytes uses", () => {
    for (let y = 1899; y <= 2101; y += 1) {
      for (let m = 0; m <= 13; m++) {
        for (const d of [0, 1, 28, 29, 30, 31, 32]) {
          const text = `${y}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
          assert.equal(calendarKey(y, m, d), dateKey(text), text);
        }
      }
    }
  });
});

describe("has_won", () => {
  const bet = (number: number): Bet => ({
    agency: 1,
    first_name: "A",
    last_name: "B",
    document: "1",
    birthdate: "2000-01-01",
    number,
  });
  it("wins exactly with 7574", () => {
    assert.equal(LOTTERY_WINNER_NUMBER, 7574);
    assert.equal(has_won(bet(7574)), true);
    for (const n of [0, 1, 7573, 7575, 75740, 757]) assert.equal(has_won(bet(n)), false, String(n));
  });
});
