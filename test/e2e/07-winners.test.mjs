// Case 7 — 3 and 5 batch agencies with known winners (course test_ej7): the draw
// (`sorteo`) happens once, after every bet was received; each agency's
// `cant_ganadores` is its own number of winners; every client exits 0.

import { test } from "node:test";
import { dockerSuite, setUpProject, whileUp } from "./lib/harness.mjs";
import { followLottery, writeAgencies } from "./lib/lottery.mjs";

async function lotteryRun(name, agencies) {
  setUpProject({
    clients: agencies.length,
    server: { loggingLevel: "DEBUG" },
    client: { loopAmount: 500, loopPeriod: "150ms" },
  });
  writeAgencies(agencies);
  const total = agencies.reduce((a, b) => a + b.rows, 0);
  await whileUp(() =>
    followLottery(
      name,
      agencies.map((a) => a.winners.length),
      total,
    ),
  );
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
