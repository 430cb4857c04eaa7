// Go time.Duration: ParseDuration and Duration.String, as the course's Go client printed them.
// The expected strings are what Go's Duration.String() returns for the same values.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { formatDuration, parseDuration } from "../../shared/src/duration.js";

const NS = 1e-6; // in milliseconds
const US = 1e-3;
const MS = 1;
const S = 1000;
const M = 60_000;
const H = 3_600_000;

// [milliseconds, Go's Duration.String()]
const FORMAT_TABLE: Array<[number, string]> = [
  [0, "0s"],
  [1 * NS, "1ns"],
  [999 * NS, "999ns"],
  [1 * US, "1µs"],
  [1.5 * US, "1.5µs"],
  [1001 * NS, "1.001µs"],
  [999.999 * US, "999.999µs"],
  [1 * MS, "1ms"],
  [1.5 * MS, "1.5ms"],
  [1500 * US, "1.5ms"],
  [1.000001 * MS, "1.000001ms"],
  [50 * MS, "50ms"],
  [100 * MS, "100ms"],
  [999.999999 * MS, "999.999999ms"],
  [1 * S, "1s"],
  [1.5 * S, "1.5s"],
  [5 * S, "5s"],
  [1 * S + 1 * NS, "1.000000001s"],
  [59.999 * S, "59.999s"],
  [60 * S, "1m0s"],
  [90 * S, "1m30s"],
  [90.5 * S, "1m30.5s"],
  [59 * M + 59 * S, "59m59s"],
  [3600 * S, "1h0m0s"],
  [H + M + S + MS, "1h1m1.001s"],
  [2 * H + 45 * M, "2h45m0s"],
  [100 * H, "100h0m0s"],
  [-1.5 * S, "-1.5s"],
  [-100 * MS, "-100ms"],
  [-1 * NS, "-1ns"],
];

// [Go duration text, milliseconds]
const PARSE_TABLE: Array<[string, number]> = [
  ["0", 0],
  ["+0", 0],
  ["-0", 0],
  ["0s", 0],
  ["5s", 5 * S],
  ["100ms", 100],
  ["50ms", 50],
  ["1m30s", 90 * S],
  ["1h", H],
  ["1h0m0s", H],
  ["1.5h", 1.5 * H],
  ["2h45m", 2 * H + 45 * M],
  ["1.5s", 1500],
  [".5s", 500],
  ["5.s", 5000],
  ["+5s", 5000],
  ["-5s", -5000],
  ["1ns", NS],
  ["1us", US],
  ["1µs", US], // U+00B5 micro sign
  ["1μs", US], // U+03BC Greek mu
  ["1500us", 1.5],
  ["1h1m1s1ms", H + M + S + 1],
  ["1s500ms", 1500],
  ["500ms1s", 1500],
  ["0.000001s", 0.001],
];

const INVALID = [
  "",
  "5",
  "s",
  "ms",
  "5x",
  "5S",
  "5 s",
  "1.5.5s",
  "--5s",
  "+-5s",
  ".s",
  ".",
  "abc",
  "1e3s",
  "1s1",
  "5sec",
  "5min",
  "0x10s",
  "1,5s",
  "∞s",
];

describe("formatDuration matches Go's Duration.String()", () => {
  for (const [ms, go] of FORMAT_TABLE) {
    it(`${ms} ms -> ${go}`, () => assert.equal(formatDuration(ms), go));
  }
});

describe("parseDuration matches Go's time.ParseDuration", () => {
  for (const [text, ms] of PARSE_TABLE) {
    it(`${text} -> ${ms} ms`, () => {
      const got = parseDuration(text);
      assert.ok(got !== null, `${text} refused`);
      assert.ok(Math.abs(got - ms) < 1e-9, `${text}: ${got} != ${ms}`);
    });
  }

  it("invalid strings give null", () => {
    for (const text of INVALID) assert.equal(parseDuration(text), null, JSON.stringify(text));
  });
});

describe("parse and format are inverse", () => {
  it("formatting then parsing gives back the value (whole nanoseconds)", () => {
    fc.assert(
      fc.property(fc.integer({ min: -1e15, max: 1e15 }), (ns) => {
        const ms = ns / 1e6;
        const text = formatDuration(ms);
        const back = parseDuration(text);
        assert.ok(back !== null, text);
        assert.equal(Math.round(back * 1e6), ns, `${ns} ns -> ${text} -> ${back} ms`);
      }),
      { numRuns: 2000 },
    );
  });

  it("the config examples print back the same text", () => {
    for (const text of ["5s", "100ms", "1m30s", "50ms", "1h0m0s", "1.5s", "2m0s"]) {
      assert.equal(formatDuration(parseDuration(text)!), text);
    }
    assert.equal(formatDuration(parseDuration("5000ms")!), "5s");
    assert.equal(formatDuration(parseDuration("90s")!), "1m30s");
    assert.equal(formatDuration(parseDuration("0.1s")!), "100ms");
  });
});
