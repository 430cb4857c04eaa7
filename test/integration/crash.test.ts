// Crash trials: the server is killed with SIGKILL at seeded moments of a 5-agency ingest and
// restarted on the same port and storage; the agencies resume on their own. Every run must end
// with the stored bets equal, as a multiset, to the input files (nothing lost, nothing stored
// twice), every agency exiting 0 with its right winners.
//
// Replay one run: CRASH_SEED=<seed> node --test dist/test/integration/crash.test.js
// More runs:     CRASH_RUNS=200 CRASH_BASE=<first seed> node --test dist/test/integration/crash.test.js

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  ACKED,
  actions,
  count,
  DONE,
  DRAWN,
  loggedWinnerCount,
  loggedWinners,
  waitCount,
} from "../../kit/logs.js";
import { freePort } from "../../kit/ports.js";
import { killHard, type ManagedProcess, reap, stop } from "../../kit/proc.js";
import { cleanup, spawnServer, startAgency, startServerOn, tempDir } from "../../kit/programs.js";
import { describeFrame, RawClient } from "../../kit/raw-client.js";
import { diagnoseAgencies, tail } from "../../kit/report.js";
import { int, pick, rng, seedsFrom } from "../../kit/rng.js";
import { compareStored } from "../../kit/stored.js";
import { guard, sleep } from "../../kit/wait.js";
import { Action } from "../../shared/src/actions.js";
import { AgencyState } from "../../shared/src/protocol/messages.js";
import { generateDataset } from "../../tools/gen-data.js";

const RUNS = Number(process.env.CRASH_RUNS ?? 30);
const BASE = Number(process.env.CRASH_BASE ?? 20240501);

const dirs: string[] = [];
after(() => dirs.forEach(cleanup));

async function dataset(
  dir: string,
  seed: number,
  bets: number[],
  winners: number[],
  crlf: boolean,
) {
  await generateDataset({ out: dir, agencies: 5, bets, winners, seed, crlf });
  return [1, 2, 3, 4, 5].map((i) => join(dir, `agency-${i}.csv`));
}

function agencyEnv(file: string, maxAmount: number, window: number): Record<string, string> {
  return {
    CLI_DATA_FILE: file,
    CLI_BATCH_MAXAMOUNT: String(maxAmount),
    CLI_BATCH_WINDOW: String(window),
    CLI_LOG_LEVEL: "DEBUG",
    CLI_RETRY_BUDGET: "60s",
  };
}

/** One seeded trial; returns a one-line summary. Every assertion message names the seed. */
async function crashRun(seed: number): Promise<string> {
  const r = rng(seed);
  const dir = tempDir();
  dirs.push(dir);
  const bets = [1, 2, 3, 4, 5].map(() => int(r, 2000, 4000));
  const winners = [1, 2, 3, 4, 5].map(() => int(r, 0, 4));
  const files = await dataset(dir, seed, bets, winners, r() < 0.5);
  const maxAmount = int(r, 20, 60);
  const window = pick(r, [1, 4, 8, 32]);
  const kills = r() < 0.5 ? 1 : r() < 0.7 ? 2 : 3;
  const port = await freePort();
  const env = { AGENCIES: "5", LOGGING_LEVEL: process.env.CRASH_LOG_LEVEL ?? "INFO" };
  const procs: ManagedProcess[] = [];
  const story: string[] = [`maxAmount=${maxAmount} window=${window}`];
  const ctx = () =>
    `crash run seed=${seed} (replay: CRASH_SEED=${seed} node --test dist/test/integration/crash.test.js) [${story.join("; ")}]`;
  try {
    let server = await startServerOn(port, env, dir);
    procs.push(server);
    const agencies = files.map((f, i) =>
      startAgency(i + 1, port, agencyEnv(f, maxAmount, window), dir),
    );
    procs.push(...agencies);
    const totalBatches = bets.reduce((n, b) => n + Math.ceil(b / maxAmount), 0);
    let seen = 0;
    for (let k = 1; k <= kills; k++) {
      const remaining = Math.max(1, totalBatches - seen);
      const target = int(r, 1, Math.max(1, Math.floor(remaining * 0.6)));
      const delay = int(r, 0, 25);
      const acked = await waitCount(
        server,
        ACKED,
        target,
        20_000,
        () => count(server, DRAWN) > 0,
      ).catch((err: Error) => {
        throw new Error(
          `${ctx()}: ${err.message}\nserver:\n${tail(server)}\n${agencies.map((a) => tail(a, 4)).join("\n--\n")}${diagnoseAgencies(agencies, bets)}`,
        );
      });
      assert.ok(server.alive, `${ctx()}: the server died on its own:\n${tail(server)}`);
      await sleep(delay);
      const drawn = count(server, DRAWN) > 0;
      await killHard(server);
      seen += count(server, ACKED);
      story.push(`kill ${k} after ${acked} acks +${delay}ms${drawn ? " (after the draw)" : ""}`);
      if (r() < 0.25) {
        // crash again while the new server recovers (before or just after it listens)
        const ms = int(r, 20, 300);
        const p = spawnServer(port, env, dir);
        procs.push(p);
        await sleep(ms);
        await killHard(p);
        story.push(`kill during start-up at ${ms}ms`);
      }
      server = await startServerOn(port, env, dir);
      procs.push(server);
    }
    const codes = await guard(
      Promise.all(agencies.map((a) => a.code)),
      30_000,
      () =>
        `${ctx()}: agencies did not finish; server:\n${tail(server)}\n${agencies.map((a) => tail(a, 5)).join("\n--\n")}${diagnoseAgencies(agencies, bets)}`,
    );
    assert.deepEqual(
      codes,
      [0, 0, 0, 0, 0],
      `${ctx()}: agency exit codes\n${agencies.map((a) => tail(a, 5)).join("\n--\n")}`,
    );
    assert.equal(await stop(server), 0, `${ctx()}: final server exit\n${tail(server)}`);
    const check = compareStored(join(dir, "bets.csv"), files);
    assert.ok(
      check.equal,
      `${ctx()}: stored bets differ from the inputs: rows ${check.rows}/${check.expected}, ` +
        `missing ${check.missing}, extra ${check.extra}\n${check.sample.join("\n")}`,
    );
    assert.deepEqual(check.bets, bets, `${ctx()}: generated files`);
    agencies.forEach((a, i) => {
      assert.equal(loggedWinnerCount(a), winners[i], `${ctx()}: agency ${i + 1} cant_ganadores`);
      assert.deepEqual(loggedWinners(a), check.winners[i], `${ctx()}: agency ${i + 1} winners`);
    });
    return `${check.rows} bets, ${story.join("; ")}`;
  } finally {
    await reap(procs);
  }
}

/** HELLO as `agency` on a fresh connection; returns the WELCOME. */
async function probe(port: number, agency: number) {
  const c = await RawClient.connect(port);
  try {
    return await c.hello(agency);
  } finally {
    await c.close();
  }
}

describe("crash trials: kill -9 during ingest, restart on the same port and storage", () => {
  for (const seed of seedsFrom("CRASH_SEED", BASE, RUNS)) {
    test(`seed ${seed}`, async () => {
      const t0 = Date.now();
      const summary = await crashRun(seed);
      console.log(`crash seed ${seed}: passed in ${Date.now() - t0}ms: ${summary}`);
    });
  }
});

describe("crash after some agencies finished and after the draw", () => {
  test("the restarted server still knows who finished and answers the same winners", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const bets = [1200, 900, 1500, 800, 1000];
    const winners = [2, 3, 1, 0, 4];
    const files = await dataset(dir, 99, bets, winners, true);
    const port = await freePort();
    const env = { AGENCIES: "5", LOGGING_LEVEL: "DEBUG" };
    const procs: ManagedProcess[] = [];
    try {
      let server = await startServerOn(port, env, dir);
      procs.push(server);
      const agencies = files.map((f, i) => {
        const a = i < 3 ? startAgency(i + 1, port, agencyEnv(f, 50, 8), dir) : null;
        if (a) procs.push(a);
        return a;
      });
      // agencies 1..3 finish (DONE journaled), then wait for the draw: kill -9 now
      await waitCount(server, DONE, 3, 60_000);
      await killHard(server);
      server = await startServerOn(port, env, dir);
      procs.push(server);
      const recovery = actions(server.lines, Action.RECOVERY)[0];
      assert.equal(recovery?.agencies_done, "3", tail(server));
      assert.equal(recovery?.bets, String(1200 + 900 + 1500), tail(server));
      for (const a of [1, 2, 3]) {
        const w = await probe(port, a);
        assert.equal(w.state, AgencyState.DONE, `agency ${a} state after the restart`);
        assert.equal(w.committed, bets[a - 1]);
      }
      assert.equal((await probe(port, 4)).state, AgencyState.OPEN);
      for (const i of [3, 4]) {
        const a = startAgency(i + 1, port, agencyEnv(files[i]!, 50, 8), dir);
        agencies[i] = a;
        procs.push(a);
      }
      const all = agencies as ManagedProcess[];
      const codes = await guard(
        Promise.all(all.map((a) => a.code)),
        60_000,
        () => `agencies did not finish:\n${tail(server)}`,
      );
      assert.deepEqual(codes, [0, 0, 0, 0, 0], all.map((a) => tail(a, 5)).join("\n--\n"));
      const check = compareStored(join(dir, "bets.csv"), files);
      assert.ok(check.equal, `stored bets differ: ${check.sample.join("\n")}`);
      all.forEach((a, i) => {
        assert.equal(loggedWinnerCount(a), winners[i], `agency ${i + 1} cant_ganadores`);
        assert.deepEqual(loggedWinners(a), check.winners[i], `agency ${i + 1} winners`);
      });

      // after the draw: kill -9, restart; every agency is DRAWN and gets the same winners
      await killHard(server);
      server = await startServerOn(port, env, dir);
      procs.push(server);
      assert.equal(actions(server.lines, Action.RECOVERY)[0]?.agencies_done, "5", tail(server));
      // the restarted server decides the draw again from its files (it may listen before that)
      await waitCount(server, DRAWN, 1, 10_000);
      for (let a = 1; a <= 5; a++) {
        const c = await RawClient.connect(port);
        try {
          const w = await c.hello(a);
          assert.equal(w.state, AgencyState.DRAWN, `agency ${a} state after the draw`);
          assert.equal(w.committed, bets[a - 1]);
          const docs = await c.winners();
          assert.deepEqual(docs?.slice().sort(), check.winners[a - 1], `agency ${a} winners`);
          const again = await c.done(bets[a - 1]!);
          assert.equal(describeFrame(again), "ACK", "DONE with the same total is idempotent");
        } finally {
          await c.close();
        }
      }
      assert.equal(count(server, DRAWN), 1, "the restarted server decides the draw once");
      assert.equal(await stop(server), 0, tail(server));
      assert.equal(compareStored(join(dir, "bets.csv"), files).equal, true);
    } finally {
      await reap(procs);
    }
  });

  test("recovery repairs a torn last bet row and a torn last journal line", async () => {
    // What a crash in the middle of an append leaves behind: the files are written here directly.
    for (const journal of ["done,1,2\r\ndone,2", "done,1"]) {
      const dir = tempDir();
      dirs.push(dir);
      const rows =
        "1,Ana,Pérez,00000001,1990-01-01,7574\r\n" +
        '1,"Juan, el ""Tano""",Álvarez,00000002,1985-05-05,12\r\n' +
        "2,Luz,Fornerón,00000003,1970-02-02,7574\r\n" +
        "2,Luz,Forner";
      writeFileSync(join(dir, "bets.csv"), rows);
      writeFileSync(join(dir, "bets.csv.state"), journal);
      const first = journal.startsWith("done,1,2\r\n");
      const port = await freePort();
      const env = { AGENCIES: "2" };
      const procs: ManagedProcess[] = [];
      try {
        let server = await startServerOn(port, env, dir);
        procs.push(server);
        const w1 = await probe(port, 1);
        assert.deepEqual(w1, { committed: 2, state: first ? AgencyState.DONE : AgencyState.OPEN });
        const w2 = await probe(port, 2);
        assert.deepEqual(w2, { committed: 1, state: AgencyState.OPEN }, `journal ${journal}`);
        // finish the open agencies; the journal gets new lines after the repaired end
        for (const a of first ? [2] : [1, 2]) {
          const c = await RawClient.connect(port);
          await c.hello(a);
          assert.equal(describeFrame(await c.done(a === 1 ? 2 : 1)), "ACK");
          await c.close();
        }
        await waitCount(server, DRAWN, 1, 10_000);
        await killHard(server);
        server = await startServerOn(port, env, dir);
        procs.push(server);
        await waitCount(server, DRAWN, 1, 10_000).catch(() => 0); // asserted below
        for (const [a, n] of [
          [1, 2],
          [2, 1],
        ] as const) {
          const c = await RawClient.connect(port);
          const w = await c.hello(a);
          assert.deepEqual(
            w,
            { committed: n, state: AgencyState.DRAWN },
            `agency ${a} after a restart (journal was ${JSON.stringify(journal)}):\n${tail(server)}`,
          );
          assert.equal((await c.winners())?.length, 1);
          await c.close();
        }
        assert.equal(await stop(server), 0);
      } finally {
        await reap(procs);
      }
    }
  });
});
