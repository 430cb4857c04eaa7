// run-local end to end: the real server and agencies as local processes, driven by the compiled
// tool exactly as `npm run lottery` runs it (stdout is a pipe here, so progress is plain lines).

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

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
  opts: { timeoutMs?: number; onStdout?: (all: string, child: ChildProcess) => void } = {},
): Promise<Outcome> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [RUN_LOCAL, ...args], {
      cwd: root,
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
    assert.deepEqual(summaryRow(r.stdout, "1").slice(0, 5), ["1", "2", "1", "2", "0"]);
    assert.deepEqual(summaryRow(r.stdout, "2").slice(0, 5), ["2", "2", "1", "2", "3"]);
    assert.match(r.stdout, /result: FAILED/);
    assert.match(r.stdout, /agency 2: 1 invalid rows and 0 rejected bets in its file \(exit 3\)/);
    assert.match(r.stdout, /run directory kept: (\S+)/);
    const kept = /run directory kept: (\S+)/.exec(r.stdout)![1]!;
    await rm(kept, { recursive: true, force: true });
  });

  it("stops every process it started on SIGINT and exits 130", async () => {
    let pids: number[] = [];
    let sent = false;
    const r = await runLocal(
      ["--agencies", "2", "--bets", "400000", "--window", "1", "--interval", "0.1"],
      {
        timeoutMs: 25_000,
        onStdout: (all, child) => {
          const server = /server listening on \S+ \(pid (\d+)\)/.exec(all);
          const agencies = /agencies started \(pids ([\d ]+)\)/.exec(all);
          if (!sent && server && agencies && /\] progress: sent [1-9]/.test(all)) {
            sent = true;
            pids = [Number(server[1]), ...agencies[1]!.trim().split(" ").map(Number)];
            child.kill("SIGINT");
          }
        },
      },
    );
    assert.ok(sent, `never saw the processes start:\n${r.stdout}\n${r.stderr}`);
    assert.equal(r.code, 130, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /result: INTERRUPTED/);
    assert.equal(pids.length, 3);
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
