// Connection faults: the agencies reach the server through a small TCP proxy that drops, resets,
// stalls and cuts connections mid-frame at seeded byte offsets (plus targeted cuts inside a
// BATCH, a DONE and a WINNERS_REQUEST frame). And SIGTERM during ingest followed by a restart.
// Same invariant as the crash trials: stored bets == input files as a multiset, right winners,
// every agency exits 0.
//
// Replay one run: FAULT_SEED=<seed> node --test dist/test/integration/faults.test.js

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  type FaultKind,
  type FaultPlan,
  FaultProxy,
  type FrameTarget,
} from "../../kit/fault-proxy.js";
import {
  ACKED,
  actions,
  count,
  DONE,
  loggedWinnerCount,
  loggedWinners,
  logRe,
  waitCount,
} from "../../kit/logs.js";
import { freePort } from "../../kit/ports.js";
import { type ManagedProcess, reap } from "../../kit/proc.js";
import { cleanup, startAgency, startServerOn, tempDir } from "../../kit/programs.js";
import { diagnoseAgencies, tail } from "../../kit/report.js";
import { int, pick, rng, seedsFrom } from "../../kit/rng.js";
import { compareStored } from "../../kit/stored.js";
import { guard } from "../../kit/wait.js";
import { Action } from "../../shared/src/actions.js";
import { MsgType } from "../../shared/src/protocol/frame.js";
import { generateDataset } from "../../tools/gen-data.js";

const RUNS = Number(process.env.FAULT_RUNS ?? 6);
const BASE = Number(process.env.FAULT_BASE ?? 5150);
/** Connections (in accept order) that get a random fault; later ones pass through. */
const FAULTY = Number(process.env.FAULT_CONNECTIONS ?? 60);

const dirs: string[] = [];
after(() => dirs.forEach(cleanup));

interface Run {
  dir: string;
  files: string[];
  bets: number[];
  winners: number[];
}

async function dataset(seed: number, r: () => number): Promise<Run> {
  const dir = tempDir();
  dirs.push(dir);
  const bets = [1, 2, 3, 4, 5].map(() => int(r, 3000, 5000));
  const winners = [1, 2, 3, 4, 5].map(() => int(r, 0, 4));
  await generateDataset({ out: dir, agencies: 5, bets, winners, seed, crlf: r() < 0.5 });
  return { dir, files: [1, 2, 3, 4, 5].map((i) => join(dir, `agency-${i}.csv`)), bets, winners };
}

function agencyEnv(file: string, maxAmount: number): Record<string, string> {
  return {
    CLI_DATA_FILE: file,
    CLI_BATCH_MAXAMOUNT: String(maxAmount),
    CLI_LOG_LEVEL: "DEBUG",
  };
}

/** Waits for the agencies, then checks exit codes, the stored multiset and the winners. */
async function verify(
  ctx: string,
  run: Run,
  agencies: ManagedProcess[],
  server: ManagedProcess,
): Promise<number> {
  const codes = await guard(
    Promise.all(agencies.map((a) => a.code)),
    45_000,
    () =>
      `${ctx}: agencies did not finish\nserver:\n${tail(server)}\n${agencies.map((a) => tail(a, 6)).join("\n--\n")}${diagnoseAgencies(agencies, run.bets)}`,
  );
  assert.deepEqual(
    codes,
    [0, 0, 0, 0, 0],
    `${ctx}: exit codes\n${agencies.map((a) => tail(a, 6)).join("\n--\n")}`,
  );
  const check = compareStored(join(run.dir, "bets.csv"), run.files);
  assert.ok(
    check.equal,
    `${ctx}: stored bets differ from the inputs: rows ${check.rows}/${check.expected}, ` +
      `missing ${check.missing}, extra ${check.extra}\n${check.sample.join("\n")}`,
  );
  agencies.forEach((a, i) => {
    assert.equal(loggedWinnerCount(a), run.winners[i], `${ctx}: agency ${i + 1} cant_ganadores`);
    assert.deepEqual(loggedWinners(a), check.winners[i], `${ctx}: agency ${i + 1} winners`);
  });
  return check.rows;
}

const KINDS: Array<[FaultKind, number]> = [
  ["pass", 2],
  ["cut_up", 5],
  ["cut_down", 3],
  ["reset", 2],
  ["stall_up", 2],
  ["stall_down", 2],
  ["drop_timed", 2],
];

function planFor(index: number, r: () => number): FaultPlan {
  if (index >= FAULTY) return { kind: "pass", at: 0, stallMs: 0 };
  let w = r() * KINDS.reduce((n, [, k]) => n + k, 0);
  let kind: FaultKind = "pass";
  for (const [k, weight] of KINDS) {
    w -= weight;
    if (w < 0) {
      kind = k;
      break;
    }
  }
  const early = r() < 0.25; // inside the HELLO / WELCOME exchange
  switch (kind) {
    case "cut_up":
    case "reset":
      return { kind, at: early ? int(r, 0, 17) : int(r, 18, 40_000), stallMs: 0 };
    case "cut_down":
      return { kind, at: early ? int(r, 0, 17) : int(r, 18, 1500), stallMs: 0 };
    case "stall_up":
      return { kind, at: int(r, 0, 60_000), stallMs: int(r, 200, 1600) };
    case "stall_down":
      return { kind, at: int(r, 0, 1200), stallMs: int(r, 200, 1600) };
    case "drop_timed":
      return { kind, at: int(r, 5, 400), stallMs: 0 };
    default:
      return { kind: "pass", at: 0, stallMs: 0 };
  }
}

describe("connection faults through a proxy", () => {
  for (const seed of seedsFrom("FAULT_SEED", BASE, RUNS)) {
    test(`seed ${seed}: drops, resets, stalls and mid-frame cuts`, async () => {
      const t0 = Date.now();
      const r = rng(seed);
      const run = await dataset(seed, r);
      const maxAmount = int(r, 20, 60);
      const agencyOf = () => int(r, 1, 5);
      // targeted cuts: inside some BATCH, inside the DONE, inside the WINNERS_REQUEST
      const targets: FrameTarget[] = [
        {
          agency: agencyOf(),
          frameType: MsgType.BATCH,
          skip: int(r, 0, 20),
          offset: int(r, 3, 900),
        },
        { agency: agencyOf(), frameType: MsgType.DONE, skip: 0, offset: int(r, 3, 15) },
        { agency: agencyOf(), frameType: MsgType.WINNERS_REQUEST, skip: 0, offset: int(r, 3, 12) },
      ];
      const ctx = `fault run seed=${seed} (replay: FAULT_SEED=${seed} node --test dist/test/integration/faults.test.js)`;
      const port = await freePort();
      const procs: ManagedProcess[] = [];
      let proxy: FaultProxy | null = null;
      try {
        // short server timeouts, so that stalls also make the server cut connections
        const server = await startServerOn(
          port,
          { AGENCIES: "5", IDLE_TIMEOUT: "1s", HELLO_TIMEOUT: "1s" },
          run.dir,
        );
        procs.push(server);
        proxy = new FaultProxy(port, seed, planFor, targets);
        const via = await proxy.listen();
        const agencies = run.files.map((f, i) =>
          startAgency(i + 1, via, agencyEnv(f, maxAmount), run.dir),
        );
        procs.push(...agencies);
        const rows = await verify(
          `${ctx} [targets ${JSON.stringify(targets)}]`,
          run,
          agencies,
          server,
        );
        assert.ok(server.alive, `${ctx}: server died\n${tail(server)}`);
        const summary = JSON.stringify(proxy.summary());
        const cuts = server.lines.filter((l) => logRe(Action.CONNECTION, "fail").test(l));
        const codes: Record<string, number> = {};
        for (const l of cuts) {
          const c = /code: (\w+)/.exec(l)?.[1] ?? "?";
          codes[c] = (codes[c] ?? 0) + 1;
        }
        console.log(
          `fault seed ${seed}: passed in ${Date.now() - t0}ms: ${rows} bets, ` +
            `${proxy.conns.length} connections, faults ${summary}, server-side cuts ${JSON.stringify(codes)}`,
        );
      } finally {
        await proxy?.close();
        await reap(procs);
      }
    });
  }
});

describe("SIGTERM during ingest, then a restart", () => {
  test("the server exits 0 with its close lines; the agencies resume; nothing lost or doubled", async () => {
    const seed = Number(process.env.FAULT_SEED ?? BASE);
    const r = rng(seed ^ 0x5eed);
    const run = await dataset(seed, r);
    const port = await freePort();
    const env = { AGENCIES: "5", LOGGING_LEVEL: "DEBUG" };
    const procs: ManagedProcess[] = [];
    try {
      let server = await startServerOn(port, env, run.dir);
      procs.push(server);
      const maxAmount = pick(r, [25, 40, 50]);
      const agencies = run.files.map((f, i) =>
        startAgency(i + 1, port, agencyEnv(f, maxAmount), run.dir),
      );
      procs.push(...agencies);
      const stops: string[] = [];
      // 1st SIGTERM in the middle of the ingest; 2nd once some agencies have finished
      const points: Array<[RegExp, number]> = [
        [ACKED, int(r, 5, 60)],
        [DONE, 2],
      ];
      for (const [re, n] of points) {
        await waitCount(server, re, n, 30_000, () => count(server, logRe(Action.SORTEO)) > 0);
        server.child.kill("SIGTERM");
        const code = await guard(
          server.code,
          10_000,
          () => `server exit after SIGTERM\n${tail(server)}`,
        );
        assert.equal(code, 0, `exit code after SIGTERM\n${tail(server)}`);
        const lines = server.lines;
        assert.equal(actions(lines, Action.CLOSE_LISTENER).length, 1, tail(server));
        const files = actions(lines, Action.CLOSE_FILE).map((m) => m.path);
        assert.deepEqual(files, ["./bets.csv", "./bets.csv.state"], tail(server));
        assert.equal(actions(lines, Action.SHUTDOWN).at(-1)?.result, "success", tail(server));
        assert.ok(!lines.some((l) => /result: fail/.test(l) && /ERROR|CRITICAL/.test(l)));
        stops.push(`SIGTERM after ${count(server, re)} x ${re.source.split("\\|")[0]}`);
        server = await startServerOn(port, env, run.dir);
        procs.push(server);
      }
      const rows = await verify(`SIGTERM run seed=${seed}`, run, agencies, server);
      const last = server;
      last.child.kill("SIGTERM");
      assert.equal(await last.code, 0);
      console.log(`sigterm: passed: ${rows} bets; ${stops.join("; ")}`);
    } finally {
      await reap(procs);
    }
  });
});
