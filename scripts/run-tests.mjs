#!/usr/bin/env node
// Runs the compiled test files with Node's built-in runner. Node 20's `--test` takes paths, not
// globs, so the files are listed here. Usage: node scripts/run-tests.mjs [unit|property|integration ...]
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const root = "dist/test";
const suites = process.argv.slice(2);
const wanted = suites.length > 0 ? suites : ["unit", "property", "integration"];

function walk(dir) {
  let out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(walk(p));
    else if (name.endsWith(".test.js")) out.push(p);
  }
  return out;
}

const files = wanted.flatMap((s) => walk(join(root, s)));
if (files.length === 0) {
  console.error(`no test files under ${wanted.map((s) => join(root, s)).join(", ")}`);
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? "1";
const r = spawnSync(
  process.execPath,
  ["--test", `--test-concurrency=${concurrency}`, "--test-reporter=spec", ...files],
  { stdio: "inherit" },
);
process.exit(r.status ?? 1);
