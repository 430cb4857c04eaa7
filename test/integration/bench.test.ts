// npm run bench end to end, at its smallest (--quick: the course scale, one configuration):
// the course row runs the course's own files, unzipped from the repository's
// .data/dataset.zip, and every run is checked (bets and winners per agency, stored rows).
// Its timings are reported, never asserted.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const BENCH = resolve(dirname(fileURLToPath(import.meta.url)), "../../tools/bench.js");

let root = "";
before(async () => {
  root = await mkdtemp(join(tmpdir(), "bench-test-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("bench", () => {
  it("--quick runs the course's files from .data/dataset.zip, correct, and writes its reports", () => {
    const out = join(root, "out");
    const data = join(root, "data");
    const r = spawnSync(
      process.execPath,
      [BENCH, "--quick", "--retries", "0", "--out", out, "--data-dir", data],
      { encoding: "utf8", timeout: 120_000 },
    );
    assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /course: the course's files, unzipped from .*\.data\/dataset\.zip/);
    const report = JSON.parse(readFileSync(join(out, "bench.json"), "utf8")) as {
      results: Array<{
        scale: string;
        bets: number;
        runs: Array<{ ok: boolean; problems: string[] }>;
      }>;
    };
    assert.equal(report.results.length, 1);
    const row = report.results[0]!;
    assert.equal(row.scale, "course");
    assert.equal(row.bets, 78_697);
    for (const run of row.runs) assert.deepEqual([run.ok, run.problems], [true, []]);
    for (const f of ["bench.md", "bench.svg"]) assert.ok(existsSync(join(out, f)), f);
    assert.ok(!existsSync(join(data, "course-files")), "the unzipped files are removed after");
  });
});
