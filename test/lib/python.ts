// python3 as the oracle of the course's formats: runs a script with `input` as JSON on its stdin
// and returns what it printed (a failed run fails the test with Python's stderr).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

export function python(script: string, input: unknown): string {
  const r = spawnSync("python3", ["-c", script], {
    input: JSON.stringify(input),
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, `python3 failed: ${r.stderr}`);
  return r.stdout;
}
