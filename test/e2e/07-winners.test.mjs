// Case 7 — 3 and 5 batch agencies with known winners (course test_ej7): the draw
// (`sorteo`) happens once, after every bet was received; each agency's
// `cant_ganadores` is its own number of winners; every client exits 0.

import { test } from "node:test";
import {
  allExited,
  clientNames,
  composeDown,
  composeUp,
  dockerSuite,
  followLogs,
  generateCompose,
  writeAgencyFile,
  writeClientConfig,
  writeServerConfig,
} from "./lib/harness.mjs";
import { agencyRows, checkLottery, lotteryDone } from "./lib/lottery.mjs";

async function lotteryRun(name, agencies) {
  writeServerConfig({ loggingLevel: "DEBUG" });
  writeClientConfig({ loopAmount: 500, loopPeriod: "150ms" });
  generateCompose(agencies.length);
  for (const [i, { rows, winners }] of agencies.entries()) {
    writeAgencyFile(i + 1, agencyRows(rows, winners));
  }
  composeUp();
  try {
    const names = clientNames(agencies.length);
    const total = agencies.reduce((a, b) => a + b.rows, 0);
    const { messages } = await followLogs(name, (m) => lotteryDone(m, names, total), {
      settled: (m) => allExited(m, names),
    });
    checkLottery(
      messages,
      agencies.map((a) => a.winners.length),
      total,
    );
  } finally {
    composeDown();
  }
}

dockerSuite("case 7: batch agencies and the draw", () => {
  test("3 agencies × 100 bets, winners 2, 1, 0", () =>
    lotteryRun("case7-3-agencies", [
      { rows: 100, winners: [0, 99] },
      { rows: 100, winners: [50] },
      { rows: 100, winners: [] },
    ]));

  test("5 agencies × 60 bets, winners 1, 2, 3, 4, 5", () =>
    lotteryRun("case7-5-agencies", [
      { rows: 60, winners: [1] },
      { rows: 60, winners: [1, 2] },
      { rows: 60, winners: [1, 2, 3] },
      { rows: 60, winners: [1, 2, 3, 4] },
      { rows: 60, winners: [1, 2, 3, 4, 5] },
    ]));
});
