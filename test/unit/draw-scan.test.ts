// The draw's scan (scanByNumber) finds exactly the winners the full parse (load_bets) finds, for
// any rows the store can write, at any chunk boundary, and skips a torn last row like it.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { load_bets } from "../../server/src/storage/course.js";
import { scanByNumber } from "../../server/src/storage/readers.js";
import { type Bet, has_won, LOTTERY_WINNER_NUMBER } from "../../shared/src/bet.js";
import { encodeCsvRow } from "../../shared/src/csv.js";

const dir = mkdtempSync(join(tmpdir(), "draw-scan-"));
after(() => rmSync(dir, { recursive: true, force: true }));

type Row = [number, string, string, string, string, string];
const row = (r: Row) => encodeCsvRow(r.map(String));

async function winnersBoth(path: string, bufferBytes: number) {
  const full: string[] = [];
  const fullRows = await load_bets(path, (b: Bet) => {
    if (has_won(b)) full.push(`${b.agency}/${b.document}/${b.first_name}`);
  });
  const fast: string[] = [];
  await scanByNumber(
    path,
    LOTTERY_WINNER_NUMBER,
    (b) => {
      if (has_won(b)) fast.push(`${b.agency}/${b.document}/${b.first_name}`);
    },
    bufferBytes,
  );
  return { full, fast, fullRows };
}

// Names that hide a row end or a winning number inside quotes, and numbers that only look alike.
const TRICKY: Row[] = [
  [1, "Ana", "Pérez", "00000001", "1990-01-31", "7574"],
  [1, 'x,7574\r\n2,"y', "Núñez", "00000002", "1990-01-31", "42"],
  [2, "Line\nBreak", 'O"Brien', "00000003", "2000-02-29", "7574"],
  [2, "A", "B", "00000004", "2000-01-01", "17574"],
  [3, "A", "B", "00000005", "2000-01-01", "757"],
  [3, "A", "B", "00000006", "2000-01-01", "0"],
  [4, 'José, el "ñandú"', "Peña", "00000007", "1999-03-17", "7574"],
  [5, "A", "B", "00000008", "2000-01-01", "75740"],
];

describe("scanByNumber (the draw's scan)", () => {
  it("finds the same winners as the full parse, at every chunk size, torn last row skipped", async () => {
    const path = join(dir, "tricky.csv");
    const bytes = Buffer.concat([
      ...TRICKY.map(row),
      Buffer.from("9,Torn,Row,00000009,2000-01-01,7574"), // no CRLF: a torn append
    ]);
    writeFileSync(path, bytes);
    for (const size of [64, 97, 128, 4096, 1 << 20]) {
      const r = await winnersBoth(path, size);
      assert.deepEqual(r.fast, r.full, `buffer ${size}`);
      assert.equal(r.fullRows, TRICKY.length);
    }
    assert.equal((await winnersBoth(path, 1 << 20)).full.length, 3);
  });

  it("any stored rows: same winners as load_bets + has_won (property)", async () => {
    // Names built from the pieces that could fool the scan: the digits, separators, quotes,
    // line breaks; and plain random text.
    const piece = fc.constantFrom(
      "7574",
      ",7574",
      "07574",
      ",",
      '"',
      "\n",
      "\r\n",
      "\r",
      "a",
      "Ñ",
      "0",
    );
    const name = fc.oneof(
      fc.array(piece, { minLength: 1, maxLength: 12 }).map((p) => p.join("")),
      fc.string({ minLength: 1, maxLength: 12 }),
    );
    const number = fc.oneof(
      fc.constant("7574"),
      fc.integer({ min: 0, max: 99_999_999 }).map(String),
    );
    const rowArb = fc.tuple(
      fc.integer({ min: 1, max: 9 }),
      name,
      name,
      fc.stringMatching(/^\d{1,10}$/),
      fc.constant("2001-02-03"),
      number,
    );
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(rowArb, { maxLength: 80 }),
        fc.integer({ min: 400, max: 1600 }),
        async (rows, size) => {
          const path = join(dir, `p${n++}.csv`);
          writeFileSync(path, Buffer.concat(rows.map((r) => row(r as Row))));
          const r = await winnersBoth(path, size); // rows are < 400 bytes
          assert.deepEqual(r.fast, r.full);
        },
      ),
      { numRuns: 300 },
    );
  });
});
