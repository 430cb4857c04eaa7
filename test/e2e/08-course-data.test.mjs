// Case 8 — 5 agencies with the course's real files (course test_ej8 conditions):
// ../shared/data/agency-{1..5}.csv (78,697 bets, CRLF, accented names) copied into
// .data/; the server's bets file ends with 78,697 rows (per agency as in the input)
// and the winners are 2, 3, 3, 2, 0. Skipped when ../shared/data is not there (the
// data may not be committed to this repository).

import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  csvRecords,
  dockerSuite,
  ROOT,
  setUpProject,
  skipUnlessDocker,
  storedBets,
  whileUp,
} from "./lib/harness.mjs";
import { followLottery } from "./lib/lottery.mjs";

const DATA = join(
  process.env.SHARED_DIR ? process.env.SHARED_DIR : join(ROOT, "../shared"),
  "data",
);
const AGENCIES = 5;
const ROWS = [26936, 25518, 16014, 9238, 991];
const WINNERS = [2, 3, 3, 2, 0];
const TOTAL = 78697;

const dataMissing = [1, 2, 3, 4, 5].some((i) => !existsSync(join(DATA, `agency-${i}.csv`)));
const skip =
  skipUnlessDocker() ||
  (dataMissing && `the course files are not in ${DATA} (they may not be committed; skipped)`);

dockerSuite(
  "case 8: 5 agencies with the course's data",
  () => {
    test("78,697 bets stored; winners 2, 3, 3, 2, 0", async (t) => {
      mkdirSync(join(ROOT, ".data"), { recursive: true });
      for (let i = 1; i <= AGENCIES; i++) {
        const source = join(DATA, `agency-${i}.csv`);
        const rows = csvRecords(readFileSync(source, "utf8")).length;
        assert.equal(rows, ROWS[i - 1], `input ${source} has ${ROWS[i - 1]} rows`);
        copyFileSync(source, join(ROOT, `.data/agency-${i}.csv`));
      }
      // The course's test_ej8 conditions: its default client config (maxAmount 10).
      setUpProject({
        clients: AGENCIES,
        server: { loggingLevel: "DEBUG" },
        client: { loopAmount: 500, loopPeriod: "150ms", maxAmount: 10 },
      });
      await whileUp(async () => {
        const started = Date.now();
        await followLottery("case8-course-data", WINNERS, TOTAL, { timeout: 600_000 });
        const seconds = (Date.now() - started) / 1000;

        const stored = storedBets();
        assert.equal(stored.length, TOTAL, "the server's bets file has 78,697 rows");
        const perAgency = [1, 2, 3, 4, 5].map(
          (i) => stored.filter((r) => r[0] === String(i)).length,
        );
        assert.deepEqual(perAgency, ROWS, "rows per agency");
        const winners = [1, 2, 3, 4, 5].map(
          (i) => stored.filter((r) => r[0] === String(i) && r[5] === "7574").length,
        );
        assert.deepEqual(winners, WINNERS, "winning rows per agency in the stored file");
        t.diagnostic(`all agencies done in ${seconds.toFixed(1)} s`);
      });
    });
  },
  { skip },
);
