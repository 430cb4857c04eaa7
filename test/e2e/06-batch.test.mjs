// Case 6 — one batch agency (course test_ej6): .data/agency-1.csv with rows like
// `A,B,00000001,2000-01-01,1`; the server's `apuesta_recibida` `cantidad` values add up
// to the rows, every batch but the last carries exactly batch.maxAmount bets, and the
// bets file holds every row once (documents keep their leading zeros).

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  betsReceived,
  csvRecords,
  dockerSuite,
  exitCode,
  followClients,
  setUpProject,
  storedBets,
  whileUp,
  writeAgencyFile,
} from "./lib/harness.mjs";

const plainRows = (n) =>
  Array.from({ length: n }, (_, i) => `A,B,${String(i).padStart(8, "0")},2000-01-01,${i}`);

// CSV-hostile names (quoted as Python's csv module writes them): separators of the log
// format and of CSV, a quote, a newline inside a field, accents.
const HOSTILE = [
  '"Ana, María",Fornerón,00000001,1990-01-31,1',
  '"O""Brien",Álvarez,00000002,1985-12-01,7574',
  '"a|b:c;d",Núñez,00000003,2000-02-29,42',
  '"Line\nBreak","Sur name",00000004,1970-06-15,9999',
  'José,"Peña ""el ñandú""",00000005,1999-03-17,0',
];

async function batchRun(rows, maxAmount, { exactBatches = true, input = plainRows(rows) } = {}) {
  setUpProject({
    clients: 1,
    server: { loggingLevel: "DEBUG" },
    client: { loopAmount: 500, loopPeriod: "150ms", maxAmount },
  });
  writeAgencyFile(1, input);
  await whileUp(async () => {
    const { messages } = await followClients(
      `case6-${rows}-rows-max-${maxAmount}`,
      ["client1"],
      (m) => betsReceived(m) >= rows,
    );

    const batches = messages
      .filter((m) => m.source === "server" && m.action === "apuesta_recibida")
      .map((m) => Number(m.fields.cantidad));
    const total = batches.reduce((a, b) => a + b, 0);
    assert.equal(total, rows, `the cantidad values (${batches.join(", ")}) add up to ${rows}`);
    assert.ok(
      batches.every((b) => b > 0 && b <= maxAmount),
      `no batch above ${maxAmount}`,
    );
    if (exactBatches) {
      assert.deepEqual(
        batches.slice(0, -1).filter((b) => b !== maxAmount),
        [],
        `every batch but the last carries ${maxAmount} bets: ${batches.join(", ")}`,
      );
      assert.equal(batches.length, Math.ceil(rows / maxAmount), "batch count");
    }

    const expectedWinners = csvRecords(input.join("\n")).filter((r) => r[4] === "7574").length;
    const winners = messages.filter(
      (m) => m.source === "client1" && m.action === "consulta_ganadores",
    );
    assert.equal(winners.length, 1, "client1 asks for its winners once");
    assert.equal(winners[0].fields.cant_ganadores, String(expectedWinners));
    assert.equal(exitCode("client1"), 0, "client1 exits 0");

    const stored = storedBets();
    assert.equal(stored.length, rows, "bets.csv rows");
    // Compared field by field (parsed), so that quoting choices do not matter.
    const key = (fields) => JSON.stringify(fields);
    assert.deepEqual(
      stored.map(key).sort(),
      csvRecords(input.join("\n"))
        .map((r) => key(["1", ...r]))
        .sort(),
      "bets.csv holds every row once, fields exactly as sent (documents as strings)",
    );
  });
}

dockerSuite("case 6: one batch agency", () => {
  test("64 rows, maxAmount 10", () => batchRun(64, 10));
  test("99 rows, maxAmount 10", () => batchRun(99, 10));
  test("64 rows, maxAmount 64 (one full batch)", () => batchRun(64, 64));
  test("99 rows, maxAmount 64", () => batchRun(99, 64));
  test("16 rows, maxAmount 64 (course)", () => batchRun(16, 64));
  test("21 rows, maxAmount 99 (course)", () => batchRun(21, 99));
  // maxAmount far above what 8 kB can hold: batches are cut by size, all rows arrive.
  test("3000 rows, maxAmount 5000 (the 8 kB cap decides)", () =>
    batchRun(3000, 5000, { exactBatches: false }));
  test('CSV-hostile names (, " | : ; newline, accents) are stored as sent', () =>
    batchRun(HOSTILE.length, 2, { input: HOSTILE }));
});
