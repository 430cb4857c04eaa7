// The agency's one-pass scanner (client/src/scan.ts) against the path it replaced: the CSV
// reader, the agency's row checks and validateBetFields, batch by batch. On generated files
// (valid rows, rows at every validation limit, quoting, blank lines, CR/LF/CRLF, bad UTF-8, a
// last line without terminator), read in chunks of many sizes and resumed mid-file, both must
// give the same frames byte for byte, the same batch offsets and lines, and the same invalid
// rows (line, code, reason).
//
// Reproduce a failure with SCAN_SEED=<printed seed>.

import assert from "node:assert/strict";
import { isUtf8 } from "node:buffer";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import type { InFlight } from "../../client/src/agency.js";
import { BetScanner, Step } from "../../client/src/scan.js";
import {
  acceptsBet,
  FIELD_COUNT,
  MAX_FIELD_BYTES,
  parseDateBytes,
  parseNumberBytes,
  validateBetFields,
} from "../../shared/src/bet.js";
import { CsvReader, type CsvRecord } from "../../shared/src/csv.js";
import { ErrorCode, errorName, type Fault, fault } from "../../shared/src/errors.js";
import { MAX_FRAME, MsgType } from "../../shared/src/protocol/frame.js";
import { BatchBuilder } from "../../shared/src/protocol/messages.js";

const TODAY = 20240615;
const dir = mkdtempSync(join(tmpdir(), "quiniela-scan-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;

/** A batch as the agency records it (InFlight), with its frame. */
export interface Batch extends InFlight {
  frame: string; // hex
}
export interface Bad {
  line: number;
  code: string;
  reason: string;
  startOffset: number;
  endOffset: number;
}
export interface Outcome {
  batches: Batch[];
  invalid: Bad[];
}

/**
 * The agency's file path before the scanner (client/src/agency.ts at 5a29a4c, streamFrom),
 * without the network: CsvReader records, `fits` before the checks, `checkRow`, skip, emit.
 */
export function reference(
  bytes: Buffer,
  from: { offset: number; line: number; skip: number },
  maxAmount: number,
): Outcome {
  const out: Outcome = { batches: [], invalid: [] };
  const builder = new BatchBuilder();
  const csv = new CsvReader(from.offset, from.line);
  let skip = from.skip;
  let pos = 0;
  let batchStart = from.offset;
  let batchStartLine = from.line;
  let lastEnd = from.offset;
  let lastEndLine = from.line;
  const emit = (): void => {
    if (builder.count === 0) return;
    out.batches.push({
      frame: builder.build(MsgType.BATCH, 0, pos).toString("hex"),
      first: pos,
      count: builder.count,
      startOffset: batchStart,
      startLine: batchStartLine,
      endOffset: lastEnd,
      endLine: lastEndLine,
    });
    pos += builder.count;
    builder.reset();
    batchStart = lastEnd;
    batchStartLine = lastEndLine;
  };
  const checkRow = (r: CsvRecord): Fault | null | "skip" => {
    if (r.fieldCount !== FIELD_COUNT) {
      if (r.fieldCount === 1 && r.ends[0]! === r.starts[0]!) return "skip";
      return fault(ErrorCode.MALFORMED, `expected ${FIELD_COUNT} fields, found ${r.fieldCount}`);
    }
    for (let f = 0; f < FIELD_COUNT; f++) {
      if (r.ends[f]! - r.starts[f]! > MAX_FIELD_BYTES) {
        return fault(ErrorCode.INVALID_NAME, `field ${f + 1} longer than ${MAX_FIELD_BYTES} bytes`);
      }
    }
    builder.add(r.bufs, r.starts, r.ends);
    const v = validateBetFields(builder.data, builder.lastStarts, builder.lastEnds, 0, TODAY);
    if (typeof v !== "number") {
      builder.undo();
      return v;
    }
    for (let f = 0; f < 2; f++) {
      if (!isUtf8(builder.data.subarray(builder.lastStarts[f]!, builder.lastEnds[f]!))) {
        builder.undo();
        return fault(ErrorCode.INVALID_NAME, "name is not valid UTF-8");
      }
    }
    return null;
  };
  const take = (r: CsvRecord, lineAfter: number): void => {
    if (r.fieldCount === FIELD_COUNT && builder.count > 0) {
      let bytes = 0;
      for (let f = 0; f < FIELD_COUNT; f++) bytes += r.ends[f]! - r.starts[f]!;
      if (builder.sizeWith(bytes) > MAX_FRAME) emit();
    }
    const bad = checkRow(r);
    if (bad === "skip") return;
    if (bad) {
      out.invalid.push({
        line: r.line,
        code: errorName(bad.code),
        reason: bad.reason,
        startOffset: r.startOffset,
        endOffset: r.endOffset,
      });
      return;
    }
    if (skip > 0) {
      builder.undo();
      skip--;
      batchStart = lastEnd = r.endOffset;
      batchStartLine = lastEndLine = lineAfter;
      return;
    }
    lastEnd = r.endOffset;
    lastEndLine = lineAfter;
    if (builder.count >= maxAmount) emit();
  };
  csv.feed(bytes.subarray(from.offset));
  for (let r = csv.next(); r; r = csv.next()) take(r, csv.lineNumber);
  for (let r = csv.end(); r; r = csv.end()) take(r, csv.lineNumber);
  emit();
  return out;
}

/** The scanner over the same bytes (written to a file), driven as the agency drives it. */
export async function scanned(
  bytes: Buffer,
  from: { offset: number; line: number; skip: number },
  maxAmount: number,
  chunkBytes: number,
): Promise<Outcome> {
  const path = join(dir, `f${fileNo++}.csv`);
  writeFileSync(path, bytes);
  const out: Outcome = { batches: [], invalid: [] };
  const sc = new BetScanner(maxAmount, chunkBytes);
  let pos = 0;
  const emit = (): void => {
    const b = sc.builder;
    if (b.count === 0) return;
    out.batches.push({
      frame: b.build(MsgType.BATCH, 0, pos).toString("hex"),
      first: pos,
      count: b.count,
      startOffset: sc.batchStart,
      startLine: sc.batchStartLine,
      endOffset: sc.lastEnd,
      endLine: sc.lastEndLine,
    });
    pos += b.count;
    sc.startBatch();
  };
  await sc.open(path, from, TODAY);
  try {
    for (;;) {
      const s = sc.step();
      if (s === Step.BATCH) emit();
      else if (s === Step.INVALID) {
        out.invalid.push({
          line: sc.invalidLine,
          code: errorName(sc.invalid!.code),
          reason: sc.invalid!.reason,
          startOffset: sc.invalidStart,
          endOffset: sc.invalidEnd,
        });
      } else if (s === Step.NEED_DATA) await sc.fill();
      else break;
    }
    emit();
  } finally {
    sc.close();
  }
  rmSync(path);
  return out;
}

// ------------------------------------------------------------------ generators

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);
const digitsOf = (min: number, max: number) =>
  fc.string({ unit: pick([..."0123456789"]), minLength: min, maxLength: max });
const NAME_UNITS = [..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "á", "ñ", "Ü", "😀"];
const plainName = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: pick(NAME_UNITS), minLength: 1, maxLength: 12 }) },
  {
    weight: 2,
    arbitrary: fc.string({ unit: pick([...NAME_UNITS, " ", "'", "-", ".", "\t"]), maxLength: 12 }),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "x".repeat(255),
      `${"ñ".repeat(127)}x`,
      "x".repeat(256),
      "ñ".repeat(128),
      "x".repeat(300), // 300 & 255 = 44: a length kept in a byte would pass
      "x".repeat(511),
      "y".repeat(3000),
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom("", " ", "a\u0000b", "#!$%&()*+") },
);
const validDate = fc
  .record({
    y: fc.integer({ min: 1900, max: 2024 }),
    m: fc.integer({ min: 1, max: 12 }),
    d: fc.integer({ min: 1, max: 28 }),
  })
  .map(({ y, m, d }) => `${y}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`);
const date = fc.oneof(
  { weight: 8, arbitrary: validDate },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "2024-02-29",
      "2023-02-29",
      "1900-02-29",
      "2000-02-29",
      "1900-01-01",
      "1899-12-31",
      "2024-06-15",
      "2024-06-16",
      "2999-01-01",
      "1999-04-31",
      "1999-04-30",
      "1999-13-01",
      "1999-00-10",
      "1999-01-00",
      "1999-01-32",
      "1999-12-31",
      "1999/03/17",
      "1999-3-17",
      "19x9-03-17",
      "17-03-1999",
      "1999-03-17T00",
      "1999.03.17",
      "1999-03-1a",
      "",
      "0000-01-01",
      "9999-12-31",
      "1999-03-17 ",
      "1999-0:-17",
      "1999-03-1:",
      "1:99-03-17",
      "1999-03-/7",
      // a byte next to the digits in every position, and dates one byte too long
      "1999-03-1/",
      "1999-0/-17",
      "199/-03-17",
      "/999-03-17",
      "1999-03-:7",
      "1999-:3-17",
      "11999-03-17",
      "1999-03-170",
      "1999--03-17",
    ),
  },
);
const document = fc.oneof(
  { weight: 6, arbitrary: digitsOf(1, 10) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      // bytes next to the digits: / (0x2f) and : (0x3a)
      ...["", "12345678901", "30.904.465", "3090a465", " 1", "-1", "١٢٣", "3090/465", "30904:65"],
      ...["1234567:", "/", ":", "1\u00b9", "12\u0000"],
    ),
  },
);
const numberField = fc.oneof(
  { weight: 6, arbitrary: digitsOf(1, 8) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      ...["", "123456789", "abc", "+1", "1.5", " 1", "7574 ", "0", "75:4", "7/74", ":", "9;"],
    ),
  },
);

/** One CSV row as bytes (without its terminator). */
const row = fc.oneof(
  {
    weight: 12,
    arbitrary: fc
      .tuple(plainName, plainName, document, date, numberField)
      .map((fields) => Buffer.from(fields.join(","), "utf8")),
  },
  {
    // quoted fields as Python writes them: "" escapes, commas and line breaks inside
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.string({ unit: pick([...'ab ,"\n\r', "é"]), maxLength: 8 }),
        fc.tuple(plainName, plainName, document, date, numberField),
        fc.integer({ min: 0, max: 4 }),
      )
      .map(([q, fields, at]) => {
        // field `at` quoted, q in front of it (q empty: a value that needed no quotes)
        const out: string[] = [...fields];
        out[at] = `"${(q + fields[at]).replaceAll('"', '""')}"`;
        return Buffer.from(out.join(","), "utf8");
      }),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        "",
        '""',
        "solo,tres,campos",
        "a,b,1,2000-01-01,1,extra",
        "a,b,1,2000-01-01",
        ",,,,",
        'a"b,c,1,2000-01-01,1',
        'a,"b",1,2000-01-01,1',
        '"a"x,b,1,2000-01-01,1',
        "a,b,1,2000-01-01,1,",
        ",".repeat(40),
      )
      .map((s) => Buffer.from(s, "utf8")),
  },
  {
    // bytes that are not UTF-8 in a name, or a name that starts with a continuation byte
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom("ff", "c3", "80", "e282", "c328", "eda080"), validDate, digitsOf(1, 8))
      .map(([hex, d, n]) =>
        Buffer.concat([Buffer.from("Ana"), Buffer.from(hex, "hex"), Buffer.from(`,B,1,${d},${n}`)]),
      ),
  },
);
const terminator = fc.oneof(
  { weight: 6, arbitrary: fc.constant("\r\n") },
  { weight: 3, arbitrary: fc.constant("\n") },
  { weight: 1, arbitrary: fc.constant("\r") },
);
const file = fc
  .tuple(fc.array(fc.tuple(row, terminator), { maxLength: 60 }), fc.boolean())
  .map(([rows, lastTerminated]) => {
    const parts: Buffer[] = [];
    rows.forEach(([r, t], i) => {
      parts.push(r);
      if (i < rows.length - 1 || lastTerminated) parts.push(Buffer.from(t));
    });
    return Buffer.concat(parts);
  });

const seed = Number(process.env.SCAN_SEED ?? Date.now() % 1_000_000);

describe("the one-pass scanner agrees with the CSV reader + validateBetFields path", () => {
  it(`generated files, any chunk size, resumed anywhere (seed ${seed})`, async () => {
    await fc.assert(
      fc.asyncProperty(
        file,
        fc.constantFrom(1, 2, 3, 7, 100, 1000),
        fc.constantFrom(16, 33, 64, 1024, 256 * 1024),
        fc.nat(),
        async (bytes, maxAmount, chunk, cut) => {
          const start = { offset: 0, line: 1, skip: 0 };
          const want = reference(bytes, start, maxAmount);
          assert.deepEqual(await scanned(bytes, start, maxAmount, chunk), want);
          // resume at a batch boundary of the first run, skipping some of its bets
          if (want.batches.length > 0) {
            const b = want.batches[cut % want.batches.length]!;
            const from = { offset: b.startOffset, line: b.startLine, skip: cut % (b.count + 1) };
            assert.deepEqual(
              await scanned(bytes, from, maxAmount, chunk),
              reference(bytes, from, maxAmount),
            );
          }
        },
      ),
      { numRuns: 300, seed },
    );
  });

  it("rows of plain valid bets in large files, 8 kB frames by size", async () => {
    // fat rows: frames close by size before reaching batch.maxAmount
    const fat = fc.tuple(
      fc.string({ unit: pick(NAME_UNITS), minLength: 100, maxLength: 255 }),
      fc.string({ unit: pick(NAME_UNITS), minLength: 100, maxLength: 255 }),
      digitsOf(1, 10),
      validDate,
      digitsOf(1, 8),
    );
    const rows = fc.sample(
      fc.oneof(fat, fc.tuple(plainName, plainName, document, date, numberField)),
      {
        numRuns: 3000,
        seed,
      },
    );
    const bytes = Buffer.from(rows.map((r) => `${r.join(",")}\r\n`).join(""), "utf8");
    for (const chunk of [1000, 4096, 65536]) {
      const start = { offset: 0, line: 1, skip: 0 };
      assert.deepEqual(await scanned(bytes, start, 1000, chunk), reference(bytes, start, 1000));
    }
  });
});

describe("the course's files (when ../shared/data is there)", () => {
  const data = join(
    process.env.SHARED_DIR
      ? resolve(process.env.SHARED_DIR)
      : resolve(import.meta.dirname, "../../../../shared"),
    "data",
  );
  for (const n of [1, 2, 3, 4, 5]) {
    const path = join(data, `agency-${n}.csv`);
    it(`agency-${n}.csv: same frames as the old path`, { skip: !existsSync(path) }, async () => {
      const bytes = readFileSync(path);
      const start = { offset: 0, line: 1, skip: 0 };
      const want = reference(bytes, start, 100);
      assert.equal(want.invalid.length, 0);
      assert.deepEqual(await scanned(bytes, start, 100, 256 * 1024), want);
      assert.deepEqual(await scanned(bytes, start, 100, 64 * 1024), want);
    });
  }
});

describe("acceptsBet says what validateBetFields says", () => {
  it("on generated fields (every limit)", () => {
    fc.assert(
      fc.property(plainName, plainName, document, date, numberField, (a, b, d, t, n) => {
        const bufs = [a, b, d, t, n].map((s) => Buffer.from(s, "utf8"));
        const all = Buffer.concat(bufs);
        const starts: number[] = [];
        const ends: number[] = [];
        let p = 0;
        for (const x of bufs) {
          starts.push(p);
          p += x.length;
          ends.push(p);
        }
        const v = validateBetFields(all, starts, ends, 0, TODAY);
        const digits = (s: string) => /^[0-9]*$/.test(s);
        // acceptsBet's contract: document and number are known to be ASCII digits
        if (digits(d) && digits(n)) {
          const ok = acceptsBet(
            bufs[0]!.length,
            bufs[1]!.length,
            bufs[2]!.length,
            parseDateBytes(bufs[3]!, 0, bufs[3]!.length),
            bufs[4]!.length,
            TODAY,
          );
          assert.equal(ok, typeof v === "number", JSON.stringify([a, b, d, t, n]));
        } else {
          assert.notEqual(typeof v, "number");
        }
        if (typeof v === "number") assert.equal(v, parseNumberBytes(bufs[4]!, 0, bufs[4]!.length));
      }),
      { numRuns: 5000, seed },
    );
  });
});
