// The file store's one-pass row encoder (server/src/storage/rows.ts) against the bet-by-bet path
// it replaced: decodeBatch + validateBetFields decide, encodeCsvRow (Python's csv module's
// bytes) writes. For generated BATCH payloads — valid bets, bets at and past every limit, CSV-
// hostile names, bad UTF-8, lengths that lie — both must accept the same batches and, when they
// do, give the same rows byte for byte.
//
// Reproduce a failure with ROWS_SEED=<printed seed>.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { checkBatch, isRefusal } from "../../server/src/storage/batch-check.js";
import { encodeBatchCsv, maxRowsSize } from "../../server/src/storage/rows.js";
import { encodeCsvRow } from "../../shared/src/csv.js";
import { BATCH_PREFIX } from "../../shared/src/protocol/messages.js";
import { batchPayload } from "../lib/codec.js";

const TODAY = 20240615;
const seed = Number(process.env.ROWS_SEED ?? Date.now() % 1_000_000);

const bytes = (s: string) => Buffer.from(s, "utf8");
const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);
const digits = (min: number, max: number) =>
  fc.string({ unit: pick([..."0123456789"]), minLength: min, maxLength: max }).map(bytes);

const name = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .string({ unit: pick([..."abcXYZ éñü'-"]), minLength: 1, maxLength: 20 })
      .map(bytes),
  },
  {
    weight: 2,
    arbitrary: fc.string({ unit: pick([...'a,"\r\n;']), minLength: 1, maxLength: 8 }).map(bytes),
  },
  { weight: 1, arbitrary: fc.constantFrom("", "x".repeat(255), "\u0000").map(bytes) },
  // not UTF-8, or starting inside a character
  {
    weight: 1,
    arbitrary: fc
      .constantFrom("ff", "80", "c3", "a9ab", "eda080")
      .map((h) => Buffer.from(h, "hex")),
  },
);
const document = fc.oneof(
  { weight: 6, arbitrary: digits(1, 10) },
  { weight: 1, arbitrary: fc.constantFrom("", "12345678901", "12a", " 1", "-1", "١").map(bytes) },
);
const validDate = fc
  .record({
    y: fc.integer({ min: 1900, max: 2024 }),
    m: fc.integer({ min: 1, max: 12 }),
    d: fc.integer({ min: 1, max: 28 }),
  })
  .map(({ y, m, d }) => bytes(`${y}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`));
const date = fc.oneof(
  { weight: 6, arbitrary: validDate },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        "2000-02-29",
        "1900-02-29",
        "2023-02-29",
        "2024-06-15",
        "2024-06-16",
        "1899-12-31",
        "1900-01-01",
        "2000-13-01",
        "2000-00-10",
        "2000-01-00",
        "2000-04-31",
        "2000/01/01",
        "2000-1-01",
        "20000-01-01",
        "2000-01-0a",
        "",
        "0000-00-00",
        "2000-12-31",
      )
      .map(bytes),
  },
);
const number = fc.oneof(
  { weight: 6, arbitrary: digits(1, 8) },
  {
    weight: 1,
    arbitrary: fc.constantFrom("", "0", "00000000", "007574", "123456789", "+1", "1.5").map(bytes),
  },
);
const bet = fc.tuple(name, name, document, date, number);

/** A payload as the wire carries it, sometimes with a lie in it. */
const payload = fc
  .tuple(
    fc.array(bet, { minLength: 0, maxLength: 40 }),
    fc.nat(),
    fc.oneof(
      { weight: 8, arbitrary: fc.constant("none") },
      { weight: 1, arbitrary: fc.constant("cut") },
      { weight: 1, arbitrary: fc.constant("extra") },
      { weight: 1, arbitrary: fc.constant("length") },
      { weight: 1, arbitrary: fc.constant("count") },
    ),
    fc.nat(),
  )
  .map(([bets, first, lie, at]) => {
    const fields = bets.flat();
    let p = batchPayload(first % 2 ** 32, bets);
    if (lie === "cut") p = p.subarray(0, at % (p.length + 1));
    else if (lie === "extra") p = Buffer.concat([p, Buffer.from("x")]);
    else if (lie === "length" && fields.length > 0) {
      const i = BATCH_PREFIX + (at % fields.length);
      p[i] = (p[i]! + 1 + (at % 3)) & 0xff;
    } else if (lie === "count") p.writeUInt16BE((bets.length + 1 + (at % 5)) & 0xffff, 4);
    return p;
  });

/** The bet-by-bet path: decodeBatch + validateBetFields decide, encodeCsvRow writes. */
function reference(p: Buffer, agency: number): Buffer | null {
  const r = checkBatch(p, TODAY);
  if (isRefusal(r)) return null;
  const { view, numbers } = r;
  const rows: Buffer[] = [];
  for (let b = 0; b < view.count; b++) {
    const f = (k: number) =>
      view.buf.toString("utf8", view.starts[b * 5 + k]!, view.ends[b * 5 + k]!);
    rows.push(encodeCsvRow([String(agency), f(0), f(1), f(2), f(3), String(numbers[b])]));
  }
  return Buffer.concat(rows);
}

describe("the one-pass row encoder agrees with the bet-by-bet path", () => {
  it(`generated payloads (seed ${seed})`, () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(payload, fc.integer({ min: 1, max: 4294967295 }), (p, agency) => {
        const prefix = Buffer.from(`${agency},`);
        const count = p.length >= BATCH_PREFIX ? p.readUInt16BE(4) : 0;
        const room = maxRowsSize(p.length, count, prefix.length);
        const out = Buffer.alloc(room + 3, 0xee);
        const end = encodeBatchCsv(p, out, 3, prefix, TODAY);
        const want = reference(p, agency);
        if (want === null) {
          assert.equal(end, -1, "refused by both");
          refused++;
          return;
        }
        accepted++;
        assert.ok(end >= 3, "accepted by both");
        assert.ok(end - 3 <= room, "within maxRowsSize");
        assert.deepEqual(out.subarray(3, end), want);
      }),
      { numRuns: 3000, seed },
    );
    // the generator must exercise both sides
    assert.ok(accepted > 100 && refused > 100, `accepted ${accepted}, refused ${refused}`);
  });
});
