// run-local end to end: the real server and agencies as local processes, driven by the compiled
// tool exactly as `npm run lottery` runs it (stdout is a pipe here, so progress is plain lines).
// The --replicas / --database runs need PostgreSQL 15 (a throwaway cluster); without it they are
// skipped with the reason, except in CI (CI=true), where that fails.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { DEFAULT_PG_BIN } from "../../kit/pg-cluster.js";
import { defaultWinners } from "../../tools/gen-data.js";
import { COURSE_ZIP } from "../../tools/lib/course-data.js";
import { startTestPg } from "./lib/pg.js";

/** Skipped only where PostgreSQL 15 is missing outside CI; with CI set, a missing one fails. */
const PG_INITDB = join(process.env.PG_BIN ?? DEFAULT_PG_BIN, "initdb");
const pgSkip: string | false =
  existsSync(PG_INITDB) || !["", "0", "false"].includes(process.env.CI ?? "")
    ? false
    : `PostgreSQL 15 is not installed (${PG_INITDB}): apt-get install -y postgresql`;

const RUN_LOCAL = resolve(dirname(fileURLToPath(import.meta.url)), "../../tools/run-local.js");

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

let root = "";
before(async () => {
  root = await mkdtemp(join(tmpdir(), "run-local-test-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Runs run-local with cwd = a fresh directory (no .data/ there); `onStdout` sees output as it comes. */
function runLocal(
  args: string[],
  opts: {
    timeoutMs?: number;
    onStdout?: (all: string, child: ChildProcess) => void;
    cwd?: string;
  } = {},
): Promise<Outcome> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [RUN_LOCAL, ...args], {
      cwd: opts.cwd ?? root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => {
      stdout += s;
      opts.onStdout?.(stdout, child);
    });
    child.stderr.setEncoding("utf8").on("data", (s: string) => {
      stderr += s;
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`run-local did not finish in time\n${stdout}\n${stderr}`));
    }, opts.timeoutMs ?? 20_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

const int = (n: number) => n.toLocaleString("en-US");

/** The summary row of an agency (or "total"): its whitespace-separated cells. */
function summaryRow(stdout: string, first: string): string[] {
  const start = stdout.indexOf("\nSummary");
  assert.ok(start >= 0, `no summary in:\n${stdout}`);
  for (const line of stdout.slice(start).split("\n")) {
    const cells = line.trim().split(/\s+/);
    if (cells[0] === first) return cells;
  }
  assert.fail(`no summary row '${first}' in:\n${stdout}`);
}

/** Live processes whose command line mentions `text` (a run directory). */
function processesMentioning(text: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmd.includes(text)) out.push(`${name}: ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function runDirOf(stdout: string): string {
  const m = /run directory: (\S+)/.exec(stdout);
  assert.ok(m, `no run directory in:\n${stdout}`);
  return m[1]!;
}

interface Summary {
  ok: boolean;
  storage: string;
  database: string | null;
  total: { bets: number; winners: number; storedRows: number };
  agencies: Array<{ sent: number; winners: number; storedRows: number; exit: string }>;
  servers: Array<{ name: string; port: number; exit: string; received: number; draws: number }>;
  fleet: { pid: number; exit: string; peakRssMb: number } | null;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("run-local", () => {
  it("runs 3 agencies × 2,000 bets and reports the right numbers (plain progress off a TTY)", async () => {
    const json = join(root, "summary.json");
    const r = await runLocal([
      "--agencies",
      "3",
      "--bets",
      "2000",
      "--winners",
      "1,2,0",
      "--seed",
      "7",
      "--interval",
      "0.05",
      "--json",
      json,
    ]);
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    const out = r.stdout;
    // non-TTY: no escape sequences, plain progress and event lines
    assert.ok(!out.includes("\x1b["), "escape sequences in non-TTY output");
    assert.match(out, /data: synthetic, generated with seed 7/);
    assert.match(out, /server listening on 127\.0\.0\.1:\d+ \(pid \d+\)/);
    assert.match(out, /3 agencies started \(pids \d+ \d+ \d+\)/);
    assert.match(
      out,
      /\] progress: sent [\d,]+\/6,000 bets \([\d.]+%\), stored [\d,]+, \d\/3 agencies done sending/,
    );
    assert.match(out, /\] progress: sent 6,000\/6,000 bets \(100\.0%\)/);
    assert.match(out, /draw done \(sorteo\)/);
    for (const [id, w] of [
      [1, 1],
      [2, 2],
      [3, 0],
    ]) {
      assert.match(
        out,
        new RegExp(`agency ${id} finished: 2,000 bets, ${w} winners, exit status 0`),
      );
      // agency, bets sent, winners, expected bets / winners, rows in bets.csv, exit, RSS
      const row = summaryRow(out, String(id));
      assert.deepEqual(row.slice(0, 7), [
        String(id),
        "2,000",
        String(w),
        "2,000",
        "/",
        String(w),
        "2,000",
      ]);
      assert.equal(row[7], "0");
    }
    assert.deepEqual(summaryRow(out, "total").slice(0, 7), [
      "total",
      "6,000",
      "3",
      "6,000",
      "/",
      "3",
      "6,000",
    ]);
    assert.match(out, /bets\.csv: 6,000 rows = 6,000 bets sent/);
    assert.match(out, /time: [\d.]+ s from start to the last agency's winners .*; [\d,]+ bets\/s/);
    assert.match(out, /result: OK/);

    const s = JSON.parse(await readFile(json, "utf8")) as {
      ok: boolean;
      total: { bets: number; winners: number; storedRows: number };
      agencies: Array<{ sent: number; winners: number; storedRows: number; exit: string }>;
      server: { exit: string };
    };
    assert.equal(s.ok, true);
    assert.deepEqual(s.total, { bets: 6000, winners: 3, storedRows: 6000 });
    assert.deepEqual(
      s.agencies.map((a) => [a.sent, a.winners, a.storedRows, a.exit]),
      [
        [2000, 1, 2000, "0"],
        [2000, 2, 2000, "0"],
        [2000, 0, 2000, "0"],
      ],
    );
    assert.equal(s.server.exit, "0");
  });

  it("unzips the course's files from .data/dataset.zip once, then uses them; more agencies: generated", async () => {
    const dir = join(root, "course-zip");
    await mkdir(join(dir, ".data"), { recursive: true });
    await copyFile(COURSE_ZIP, join(dir, ".data/dataset.zip"));
    const first = await runLocal(["--progress", "none"], { cwd: dir });
    assert.equal(first.code, 0, `exit ${first.code}\n${first.stdout}\n${first.stderr}`);
    assert.match(
      first.stdout,
      /unzipped agency-1\.csv, agency-2\.csv, agency-3\.csv, agency-4\.csv, agency-5\.csv from \.data\/dataset\.zip/,
    );
    assert.match(first.stdout, /data: the course's files, unzipped from \.data\/dataset\.zip/);
    const course = [
      [26936, 2],
      [25518, 3],
      [16014, 3],
      [9238, 2],
      [991, 0],
    ];
    course.forEach(([bets, winners], i) => {
      const row = summaryRow(first.stdout, String(i + 1));
      // sent, winners, expected "bets / winners" (counted in the files), rows stored
      const want = [int(bets!), String(winners), int(bets!), "/", String(winners), int(bets!)];
      assert.deepEqual(row.slice(1, 7), want, row.join(" "));
    });
    assert.match(first.stdout, /result: OK/);

    const again = await runLocal(["--progress", "none"], { cwd: dir });
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stdout, /unzipped/);
    assert.match(again.stdout, /data: the files in \.data\//);
    assert.deepEqual(summaryRow(again.stdout, "total").slice(1, 3), ["78,697", "10"]);

    const more = await runLocal(["--progress", "none", "--agencies", "6", "--window", "64"], {
      cwd: dir,
    });
    assert.equal(more.code, 0, more.stderr);
    assert.match(more.stdout, /data: synthetic, generated with seed 1/);
    assert.deepEqual(summaryRow(more.stdout, "6").slice(1, 3), ["26,936", "2"]);
  });

  it("fails (exit 1) when an agency's file has invalid rows, and says which", async () => {
    const data = join(root, "bad-data");
    await mkdir(data, { recursive: true });
    await writeFile(
      join(data, "agency-1.csv"),
      "Ana,Pérez,30904465,1999-03-17,7574\nJuan,Gómez,33791469,1980-01-01,1234\n",
    );
    await writeFile(
      join(data, "agency-2.csv"),
      "Luis,Díaz,24813860,1972-12-23,7574\nBad,Row,notdigits,1990-01-01,12\nSol,Paz,11111111,2001-05-05,99\n",
    );
    const r = await runLocal(["--data", data, "--progress", "none"]);
    assert.equal(r.code, 1, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /data: files in .*bad-data \(--data\)/);
    // agency, sent, winners, expected "bets / winners" (read from the file), rows stored, exit
    const cells = (id: string) => summaryRow(r.stdout, id).slice(0, 8);
    assert.deepEqual(cells("1"), ["1", "2", "1", "2", "/", "1", "2", "0"]);
    assert.deepEqual(cells("2"), ["2", "2", "1", "3", "/", "1", "2", "3"]);
    assert.match(r.stdout, /result: FAILED/);
    assert.match(r.stdout, /agency 2: 1 invalid rows and 0 rejected bets in its file \(exit 3\)/);
    assert.match(r.stdout, /agency 2: sent 2 bets, its file holds 3/);
    assert.match(r.stdout, /run directory kept: (\S+)/);
    const kept = /run directory kept: (\S+)/.exec(r.stdout)![1]!;
    await rm(kept, { recursive: true, force: true });
  });

  /**
   * Runs a long lottery (2 agencies × 400,000 bets, window 1) and calls `stop` once its output
   * names the processes (and `when` holds); returns the outcome and those processes' pids.
   */
  async function interrupted(
    stop: (child: ChildProcess) => void,
    when: (all: string) => boolean = () => true,
  ): Promise<{ r: Outcome; pids: number[] }> {
    let pids: number[] = [];
    const r = await runLocal(
      ["--agencies", "2", "--bets", "400000", "--window", "1", "--interval", "0.1"],
      {
        timeoutMs: 25_000,
        onStdout: (all, child) => {
          const server = /server listening on \S+ \(pid (\d+)\)/.exec(all);
          const agencies = /agencies started \(pids ([\d ]+)\)/.exec(all);
          if (pids.length === 0 && server && agencies && when(all)) {
            pids = [Number(server[1]), ...agencies[1]!.trim().split(" ").map(Number)];
            stop(child);
          }
        },
      },
    );
    assert.equal(pids.length, 3, `never saw the processes start:\n${r.stdout}\n${r.stderr}`);
    return { r, pids };
  }

  it("stops every process it started on SIGINT and exits 130", async () => {
    const { r, pids } = await interrupted(
      (child) => child.kill("SIGINT"),
      (all) => /\] progress: sent [1-9]/.test(all),
    );
    assert.equal(r.code, 130, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /result: INTERRUPTED/);
    for (const pid of pids) assert.equal(isRunning(pid), false, `pid ${pid} still running`);
  });

  it("stops every process it started when its output is closed (`| head`), exit 130", async () => {
    // what `head` does once it has its lines
    const { r, pids } = await interrupted((child) => child.stdout?.destroy());
    assert.equal(r.code, 130, `exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, /run-local: output closed \(EPIPE\): stopping/);
    for (const pid of pids) assert.equal(isRunning(pid), false, `pid ${pid} still running`);
  });

  it("explains usage errors with exit 2", async () => {
    const r = await runLocal(["--sync", "sometimes"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--sync: fdatasync, fsync or none/);
    const h = await runLocal(["--help"]);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /Usage: npm run lottery/);
  });
});

describe("run-local with PostgreSQL replicas", { skip: pgSkip }, () => {
  it("--replicas 3: 5 agencies × 2,000 bets over a throwaway cluster, one sorteo, cluster stopped", async () => {
    const json = join(root, "replicas.json");
    const r = await runLocal(
      [
        "--replicas",
        "3",
        "--agencies",
        "5",
        "--bets",
        "2000",
        "--winners",
        "2,3,3,2,0",
        "--interval",
        "0.2",
        "--json",
        json,
      ],
      { timeoutMs: 120_000 },
    );
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    const out = r.stdout;
    const runDir = runDirOf(out);
    assert.match(out, /started a throwaway PostgreSQL 15 cluster on 127\.0\.0\.1:\d+/);
    assert.match(out, /servers: 3 replicas over a throwaway PostgreSQL 15/);
    const ports = [1, 2, 3].map((i) => {
      const m = new RegExp(`replica ${i} listening on 127\\.0\\.0\\.1:(\\d+) \\(pid \\d+\\)`).exec(
        out,
      );
      assert.ok(m, `replica ${i} never listened:\n${out}`);
      return Number(m[1]);
    });
    assert.equal(new Set(ports).size, 3, "each replica on its own port");
    assert.match(out, /draw done \(sorteo, replica [123]\)/);
    assert.match(out, /sorteo: logged once, by replica [123]/);
    assert.match(out, /bets table: 10,000 rows = 10,000 bets sent/);
    for (let i = 1; i <= 3; i++) {
      assert.match(
        out,
        new RegExp(
          `  replica ${i}: 127\\.0\\.0\\.1:${ports[i - 1]}, exit 0, peak RSS [\\d.]+ MB .*received [\\d,]+ bets`,
        ),
      );
    }
    assert.match(out, /result: OK/);
    const s = JSON.parse(await readFile(json, "utf8")) as Summary;
    assert.equal(s.ok, true);
    assert.equal(s.storage, "postgres");
    assert.deepEqual(s.total, { bets: 10_000, winners: 10, storedRows: 10_000 });
    assert.deepEqual(
      s.agencies.map((a) => [a.sent, a.winners, a.storedRows, a.exit]),
      [2, 3, 3, 2, 0].map((w) => [2000, w, 2000, "0"]),
    );
    assert.equal(s.servers.length, 3);
    assert.deepEqual(
      s.servers.map((x) => x.exit),
      ["0", "0", "0"],
    );
    assert.equal(
      s.servers.reduce((n, x) => n + x.draws, 0),
      1,
      "exactly one sorteo across the replicas",
    );
    assert.equal(
      s.servers.reduce((n, x) => n + x.received, 0),
      10_000,
      "apuesta_recibida lines add up to the bets",
    );
    // agency i started at replica (i-1) mod 3: with no failure every replica took bets
    assert.ok(
      s.servers.every((x) => x.received > 0),
      JSON.stringify(s.servers),
    );
    // the cluster was stopped and its directory removed with the run directory
    assert.deepEqual(processesMentioning(runDir), []);
    assert.equal(existsSync(runDir), false, `${runDir} left behind`);
  });

  it("--replicas 2 stops the cluster on SIGINT too (exit 130, nothing left running)", async () => {
    let runDir = "";
    let sent = false;
    const r = await runLocal(
      [
        "--replicas",
        "2",
        "--agencies",
        "2",
        "--bets",
        "100000",
        "--window",
        "1",
        "--interval",
        "0.1",
      ],
      {
        timeoutMs: 120_000,
        onStdout: (all, child) => {
          if (!sent && /\] progress: sent [1-9]/.test(all)) {
            sent = true;
            runDir = runDirOf(all);
            child.kill("SIGINT");
          }
        },
      },
    );
    assert.ok(sent, `never saw progress:\n${r.stdout}\n${r.stderr}`);
    assert.equal(r.code, 130, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /result: INTERRUPTED/);
    assert.deepEqual(processesMentioning(runDir), []);
    assert.equal(existsSync(runDir), false, `${runDir} left behind`);
  });

  it("--database URL: one server over an existing PostgreSQL; refuses a database that holds a lottery", async () => {
    const pg = await startTestPg();
    try {
      const url = await pg.fresh();
      const args = ["--database", url, "--agencies", "3", "--bets", "1000", "--progress", "none"];
      const r = await runLocal(args, { timeoutMs: 90_000 });
      assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /servers: 1 server over PostgreSQL at postgres:\/\//);
      assert.match(r.stdout, /sorteo: logged once, by server/);
      assert.match(r.stdout, /bets table: 3,000 rows = 3,000 bets sent/);
      assert.equal(await pg.query(url, "SELECT count(*) FROM bets"), "3000\n");
      // the same database again: its tables hold the last lottery
      const again = await runLocal(args, { timeoutMs: 60_000 });
      assert.equal(again.code, 1, `exit ${again.code}\n${again.stdout}\n${again.stderr}`);
      assert.match(again.stderr, /already holds a lottery's tables .*--reset-database/);
      const reset = await runLocal([...args, "--reset-database"], { timeoutMs: 90_000 });
      assert.equal(reset.code, 0, `exit ${reset.code}\n${reset.stdout}\n${reset.stderr}`);
      assert.match(reset.stdout, /result: OK/);
    } finally {
      await pg.stop();
    }
  });
});

describe("run-local --fleet", () => {
  it("drives 50 agencies × 200 bets from one load-generator process", async () => {
    const json = join(root, "fleet.json");
    const r = await runLocal(
      ["--fleet", "--agencies", "50", "--bets", "200", "--interval", "0.2", "--json", json],
      { timeoutMs: 60_000 },
    );
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    const out = r.stdout;
    const m = /load generator started for 50 agencies \(pid (\d+)\)/.exec(out);
    assert.ok(m, out);
    assert.equal(isRunning(Number(m[1])), false);
    assert.match(out, /load generator finished: exit status 0/);
    assert.match(out, /\] progress: sent 10,000\/10,000 bets \(100\.0%\)/);
    assert.match(out, /load generator: one process \(pid \d+\) for 50 agencies, exit 0, peak RSS/);
    assert.match(out, /bets\.csv: 10,000 rows = 10,000 bets sent/);
    assert.match(out, /result: OK \(50 agencies got their winners/);
    const s = JSON.parse(await readFile(json, "utf8")) as Summary;
    assert.equal(s.ok, true);
    assert.equal(s.fleet?.exit, "0");
    assert.equal(s.agencies.length, 50);
    s.agencies.forEach((a, i) => {
      assert.deepEqual(
        [a.sent, a.winners, a.storedRows, a.exit],
        [200, defaultWinners(i + 1), 200, "0"],
      );
    });
  });
});
