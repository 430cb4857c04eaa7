// Case 6 — one batch agency (course test_ej6): .data/agency-1.csv with rows like
// `A,B,00000001,2000-01-01,1`; the server's `apuesta_recibida` `cantidad` values add up
// to the rows, every batch but the last carries exactly batch.maxAmount bets, and the
// bets file holds every row once (documents keep their leading zeros).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  allExited,
  betsReceived,
  composeDown,
  composeUp,
  csvRecords,
  exitCode,
  failures,
  followLogs,
  generateCompose,
  run,
  setUpSuite,
  show,
  skipUnlessDocker,
  tearDownSuite,
  writeAgencyFile,
  writeClientConfig,
  writeServerConfig,
} from "./lib/harness.mjs";

const plainRows = (n) =>
  Array.from({ length: n }, (_, i) => `A,B,${String(i).padStart(8, "0")},2000-01-01,${i}`);

async function batchRun(rows, maxAmount, { exactBatches = true } = {}) {
  writeServerConfig({ loggingLevel: "DEBUG" });
  writeClientConfig({ loopAmount: 500, loopPeriod: "150ms", maxAmount });
  generateCompose(1);
  const input = plainRows(rows);
  writeAgencyFile(1, input);
  composeUp();
  try {
    const { messages } = await followLogs(
      `case6-${rows}-rows-max-${maxAmount}`,
      (m) => allExited(m, ["client1"]) && betsReceived(m) >= rows,
      { settled: (m) => allExited(m, ["client1"]) },
    );
    assert.deepEqual(failures(messages), [], show(failures(messages)));

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

    const winners = messages.filter(
      (m) => m.source === "client1" && m.action === "consulta_ganadores",
    );
    assert.equal(winners.length, 1, "client1 asks for its winners once");
    assert.equal(winners[0].fields.cant_ganadores, "0");
    assert.equal(exitCode("client1"), 0, "client1 exits 0");

    const csv = run("docker", ["exec", "server", "cat", "bets.csv"]);
    assert.equal(csv.status, 0, csv.stderr);
    const stored = csvRecords(csv.stdout);
    assert.equal(stored.length, rows, "bets.csv rows");
    assert.deepEqual(
      stored.map((r) => r.join(",")).sort(),
      input.map((r) => `1,${r}`).sort(),
      "bets.csv holds every row once, documents as strings",
    );
  } finally {
    composeDown();
  }
}

describe("case 6: one batch agency", { skip: skipUnlessDocker() }, () => {
  before(setUpSuite);
  after(tearDownSuite);

  test("64 rows, maxAmount 10", () => batchRun(64, 10));
  test("99 rows, maxAmount 10", () => batchRun(99, 10));
  test("64 rows, maxAmount 64 (one full batch)", () => batchRun(64, 64));
  test("99 rows, maxAmount 64", () => batchRun(99, 64));
  test("16 rows, maxAmount 64 (course)", () => batchRun(16, 64));
  test("21 rows, maxAmount 99 (course)", () => batchRun(21, 99));
  // maxAmount far above what 8 kB can hold: batches are cut by size, all rows arrive.
  test("3000 rows, maxAmount 5000 (the 8 kB cap decides)", () =>
    batchRun(3000, 5000, { exactBatches: false }));
});
