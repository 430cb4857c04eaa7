// Several server replicas sharing one PostgreSQL, as real processes on loopback against a real
// throwaway PostgreSQL 15. The invariant of every run: the rows of the bets table equal the
// agencies' input files as a multiset (nothing lost, nothing stored twice), every agency exits 0
// with its right winners, and exactly one replica logs `sorteo`.
//
// Replay one kill trial: PG_CRASH_SEED=<seed> node --test dist/test/integration/pg-replicas.test.js

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import {
  ACKED,
  actions,
  count,
  DRAWN,
  loggedWinnerCount,
  logRe,
  waitCount,
} from "../../kit/logs.js";
import { freePort } from "../../kit/ports.js";
import { killHard, type ManagedProcess, reap, stop } from "../../kit/proc.js";
import {
  COURSE_DATA,
  cleanup,
  type ServerProc,
  spawnServer,
  startAgency,
  startServerOn,
  tempDir,
} from "../../kit/programs.js";
import { describeFrame, RawClient } from "../../kit/raw-client.js";
import { tail } from "../../kit/report.js";
import { int, rng, seedsFrom } from "../../kit/rng.js";
import { compareStored } from "../../kit/stored.js";
import { guard, sleep } from "../../kit/wait.js";
import { LOCK_CLASS, LOCK_DRAW } from "../../server/src/storage/pg-schema.js";
import { Action } from "../../shared/src/actions.js";
import { ErrorCode, isFault } from "../../shared/src/errors.js";
import { MsgType } from "../../shared/src/protocol/frame.js";
import { BatchBuilder, decodeAck, decodeFaultReply } from "../../shared/src/protocol/messages.js";
import { COURSE_WINNERS, courseFiles } from "./lib/course.js";
import { pgSkip, startTestPg, type TestPg } from "./lib/pg.js";

const RUNS = Number(process.env.PG_CRASH_RUNS ?? 2);
const BASE = Number(process.env.PG_CRASH_BASE ?? 20260101);

const haveCourse = existsSync(join(COURSE_DATA, "agency-1.csv"));
const COURSE_FILES = [1, 2, 3, 4, 5].map((i) => join(COURSE_DATA, `agency-${i}.csv`));

describe("server replicas over PostgreSQL", { skip: pgSkip }, () => {
  let pgt: TestPg;
  const dirs: string[] = [];
  const procs: ManagedProcess[] = [];
  before(async () => {
    pgt = await startTestPg();
  });
  after(async () => {
    await reap(procs);
    await pgt?.stop();
    dirs.forEach(cleanup);
  });

  function dir(): string {
    const d = tempDir();
    dirs.push(d);
    return d;
  }

  /** n replicas on free ports below the ephemeral range, sharing `url`. */
  async function replicas(
    url: string,
    n: number,
    env: Record<string, string> = {},
  ): Promise<ServerProc[]> {
    const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
    const servers = await Promise.all(
      ports.map((port) =>
        startServerOn(
          port,
          { AGENCIES: "5", DATABASE_URL: url, LOGGING_LEVEL: "INFO", ...env },
          dir(),
        ),
      ),
    );
    procs.push(...servers);
    return servers;
  }

  const addr = (s: ServerProc) => `127.0.0.1:${s.port}`;

  function agencies(
    files: string[],
    address: (i: number) => string,
    cwd: string,
  ): ManagedProcess[] {
    const out = files.map((f, i) =>
      startAgency(
        i + 1,
        0,
        {
          CLI_SERVER_ADDRESS: address(i),
          CLI_DATA_FILE: f,
          CLI_BATCH_MAXAMOUNT: "100",
          CLI_RETRY_BUDGET: "60s",
        },
        cwd,
      ),
    );
    procs.push(...out);
    return out;
  }

  /**
   * Every agency 0 with its winners, one `sorteo`, the table equal to the inputs. Stops the
   * replicas still running.
   */
  async function checkInvariant(
    what: string,
    url: string,
    servers: ServerProc[],
    ags: ManagedProcess[],
    files: string[],
  ): Promise<void> {
    const ctx = () =>
      `${what}\n${servers.map((s, i) => `replica ${i + 1}:\n${tail(s)}`).join("\n--\n")}\n${ags.map((a) => tail(a, 5)).join("\n--\n")}`;
    const codes = await guard(
      Promise.all(ags.map((a) => a.code)),
      120_000,
      () => `agencies did not finish: ${ctx()}`,
    );
    assert.deepEqual(codes, [0, 0, 0, 0, 0], `agency exit codes: ${ctx()}`);
    assert.deepEqual(
      ags.map((a) => loggedWinnerCount(a)),
      COURSE_WINNERS,
      `winners per agency: ${ctx()}`,
    );
    // the log is written asynchronously: count the draws once the replicas have exited
    for (const s of servers) if (s.alive) assert.equal(await stop(s), 0, ctx());
    const draws = servers.reduce((n, s) => n + count(s, DRAWN), 0);
    assert.equal(draws, 1, `exactly one sorteo across the replicas: ${ctx()}`);
    const csv = join(dir(), "bets.csv");
    await pgt.dumpBets(url, csv);
    const check = compareStored(csv, files);
    assert.ok(
      check.equal,
      `${what}: stored ${check.rows} rows, expected ${check.expected}; missing ${check.missing}, extra ${check.extra}\n${check.sample.join("\n")}`,
    );
  }

  test("3 replicas × the course's 5 files, each agency at one replica: all stored once, one draw, right winners", {
    skip: haveCourse ? false : `the course files are not in ${COURSE_DATA}`,
  }, async () => {
    const url = await pgt.fresh();
    const servers = await replicas(url, 3);
    const ags = agencies(COURSE_FILES, (i) => addr(servers[i % 3]!), dir());
    await checkInvariant("3 replicas", url, servers, ags, COURSE_FILES);
    for (const s of servers) {
      assert.ok(count(s, ACKED) > 0, "every replica took batches");
      assert.equal(await stop(s), 0, tail(s));
      assert.ok(s.lines.some((l) => logRe(Action.CLOSE_DATABASE, "success").test(l)));
    }
    const all = [...servers.flatMap((s) => s.lines), ...ags.flatMap((a) => a.lines)];
    const failed = all.filter((l) => l.includes("result: fail"));
    assert.deepEqual(failed, [], "nothing fails in a normal run");
    const received = servers.flatMap((s) => actions(s.lines, Action.APUESTA_RECIBIDA));
    assert.equal(
      received.reduce((n, m) => n + Number(m.cantidad), 0),
      78697,
    );
  });

  for (const seed of seedsFrom("PG_CRASH_SEED", BASE, RUNS)) {
    test(`kill -9 of a replica mid-ingest, agencies finish through the others (seed ${seed})`, async () => {
      const r = rng(seed);
      const d = dir();
      const files = (await courseFiles(d)).files;
      const url = await pgt.fresh();
      const servers = await replicas(url, 3);
      const victim = int(r, 0, 2);
      const after = int(r, 3, 80);
      // Every agency knows every replica; it starts at entry (id-1) mod 3 and moves on on failure.
      const list = servers.map(addr).join(",");
      const ags = agencies(files, () => list, d);
      const acked = await waitCount(servers[victim]!, ACKED, after, 60_000, () =>
        servers.some((s) => count(s, DRAWN) > 0),
      );
      assert.equal(
        servers.reduce((n, s) => n + count(s, DRAWN), 0),
        0,
        `seed ${seed}: the kill must come before the draw`,
      );
      await killHard(servers[victim]!);
      await checkInvariant(
        `seed ${seed}: replica ${victim + 1} killed after ${acked} acks (replay: PG_CRASH_SEED=${seed})`,
        url,
        servers,
        ags,
        files,
      );
      for (const s of servers) if (s.alive) assert.equal(await stop(s), 0);
    });
  }

  test("PostgreSQL restarted mid-ingest: the replicas report it, the agencies resume, all completes", async () => {
    const d = dir();
    const files = (await courseFiles(d)).files;
    const url = await pgt.fresh();
    const servers = await replicas(url, 3);
    const list = servers.map(addr).join(",");
    const ags = agencies(files, () => list, d);
    await waitCount(servers[0]!, ACKED, 20, 60_000);
    await pgt.cluster.restart();
    await checkInvariant("PostgreSQL restart", url, servers, ags, files);
    const failed = servers.flatMap((s) =>
      actions(s.lines, Action.STORAGE).filter((m) => m.result === "fail"),
    );
    assert.ok(failed.length > 0, "the loss of the database is logged");
    for (const s of servers) assert.equal(await stop(s), 0, tail(s));
  });

  /** One batch frame of `n` bets (one winner), starting at `first`. */
  function batchFrame(seq: number, first: number, n: number, doc0: number): Buffer {
    const b = new BatchBuilder();
    for (let i = 0; i < n; i++) {
      b.addStrings([
        "Ana",
        "Pérez",
        String(doc0 + i),
        "1990-01-01",
        i === 0 ? "7574" : String(100 + i),
      ]);
    }
    return b.build(MsgType.BATCH, seq, first);
  }

  test("the same batch through two replicas at once, the first transaction in flight: stored once", async () => {
    const url = await pgt.fresh();
    const [r1, r2] = await replicas(url, 2, { AGENCIES: "1" });
    const c1 = await RawClient.connect(r1!.port);
    const c2 = await RawClient.connect(r2!.port);
    assert.equal((await c1.hello(1)).committed, 0);
    assert.equal((await c2.hello(1)).committed, 0);
    // Hold the agency's row as an in-flight transaction would: both replicas queue behind it.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query("BEGIN; SELECT * FROM agencies WHERE agency = 1 FOR UPDATE");
    const frame = batchFrame(7, 0, 50, 40_000_000);
    const replies = [c1.request(frame), c2.request(frame)];
    await sleep(300);
    await holder.query("COMMIT");
    await holder.end();
    const frames = (await Promise.all(replies)).map((f) => f[0]!);
    const acks = frames.filter((f) => f.type === MsgType.ACK);
    const errors = frames.filter((f) => f.type === MsgType.ERROR);
    assert.equal(acks.length, 1, frames.map(describeFrame).join(", "));
    assert.equal(decodeAck(acks[0]!.payload), 50);
    assert.equal(errors.length, 1);
    const e = decodeFaultReply(errors[0]!.payload);
    assert.ok(!isFault(e) && e.code === ErrorCode.OUT_OF_SEQUENCE, describeFrame(errors[0]!));
    assert.equal((await pgt.query(url, "SELECT count(*) FROM bets")).trim(), "50");
    // The refused connection was closed; reconnecting tells the agency where it stands.
    const c3 = await RawClient.connect(r2!.port);
    assert.equal((await c3.hello(1)).committed, 50);
    for (const c of [c1, c2, c3]) await c.close();
    for (const s of [r1!, r2!]) assert.equal(await stop(s), 0);
  });

  for (let round = 1; round <= 3; round++) {
    test(`two replicas receive the last two DONEs at the same moment: one draw (round ${round})`, async () => {
      const url = await pgt.fresh();
      const [r1, r2] = await replicas(url, 2, { AGENCIES: "2" });
      const c1 = await RawClient.connect(r1!.port);
      const c2 = await RawClient.connect(r2!.port);
      await c1.hello(1);
      await c2.hello(2);
      assert.equal((await c1.request(batchFrame(c1.nextSeq(), 0, 10, 1000)))[0]!.type, MsgType.ACK);
      assert.equal((await c2.request(batchFrame(c2.nextSeq(), 0, 20, 2000)))[0]!.type, MsgType.ACK);
      const dones = await Promise.all([c1.done(10), c2.done(20)]);
      assert.deepEqual(
        dones.map((f) => f.type),
        [MsgType.ACK, MsgType.ACK],
      );
      const [w1, w2] = await Promise.all([c1.winners(true), c2.winners(true)]);
      assert.deepEqual(w1, ["1000"]);
      assert.deepEqual(w2, ["2000"]);
      for (const c of [c1, c2]) await c.close();
      // the log is written asynchronously: count the draws once both replicas have exited
      for (const s of [r1!, r2!]) assert.equal(await stop(s), 0);
      assert.equal(count(r1!, DRAWN) + count(r2!, DRAWN), 1, `${tail(r1!)}\n--\n${tail(r2!)}`);
    });
  }

  test("a replica started while every agency is done but the draw is not: it runs the draw", async () => {
    const url = await pgt.fresh();
    const [r1] = await replicas(url, 1, { AGENCIES: "1" });
    // The draw never completes on r1: simulate its death mid-draw by holding the draw lock.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    holder.on("error", () => undefined);
    await holder.query(`BEGIN; SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${LOCK_DRAW})`);
    const c1 = await RawClient.connect(r1!.port);
    await c1.hello(1);
    assert.equal((await c1.request(batchFrame(c1.nextSeq(), 0, 5, 3000)))[0]!.type, MsgType.ACK);
    assert.equal((await c1.done(5)).type, MsgType.ACK);
    await c1.close();
    await killHard(r1!); // dies while waiting for the lock: no draw
    await holder.query("ROLLBACK");
    await holder.end();
    const [r2] = await replicas(url, 1, { AGENCIES: "1" });
    await r2!.waitFor(DRAWN, 20_000);
    const c2 = await RawClient.connect(r2!.port);
    assert.equal((await c2.hello(1)).state, 2);
    assert.deepEqual(await c2.winners(false), ["3000"]);
    await c2.close();
    assert.equal(count(r1!, DRAWN), 0);
    assert.equal(await stop(r2!), 0);
  });

  test("PostgreSQL unreachable at start: storage lines, then exit 1 with a clear reason", async () => {
    const port = await freePort();
    const p = spawnServer(
      port,
      { DATABASE_URL: "postgres://quiniela:pw@127.0.0.1:1/lottery", DATABASE_RETRY: "1s" },
      dir(),
    );
    procs.push(p);
    assert.equal(await p.code, 1);
    assert.match(
      p.stderr,
      /^fatal: PostgreSQL at postgres:\/\/quiniela:\*\*\*@127\.0\.0\.1:1\/lottery unusable after \d+ attempts/m,
    );
    assert.ok(
      p.lines.some((l) => logRe(Action.STORAGE, "fail", String.raw` \| store: postgres`).test(l)),
    );
    assert.ok(!`${p.stderr}${p.lines.join("\n")}`.includes(":pw@"), "no password in the output");
  });
});
