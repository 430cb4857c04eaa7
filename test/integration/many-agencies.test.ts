// The load generator: one agency process driving many agency sessions (`--agencies 1-200 --data
// DIR`), each the ordinary protocol over its own connection with its own file, against a real
// server. All must finish with their own winners, every bet stored once.

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { actions, logRe } from "../../kit/logs.js";
import { type ManagedProcess, reap, stop } from "../../kit/proc.js";
import { AGENCY_JS, cleanup, run, startAgency, startServer, tempDir } from "../../kit/programs.js";
import { tail } from "../../kit/report.js";
import { compareStored } from "../../kit/stored.js";
import { guard } from "../../kit/wait.js";
import { Action } from "../../shared/src/actions.js";
import { defaultWinners, generateDataset } from "../../tools/gen-data.js";

const dirs: string[] = [];
const procs: ManagedProcess[] = [];
after(async () => {
  await reap(procs);
  dirs.forEach(cleanup);
});

/** The agency program with arguments (the load generator), collecting its lines. */
function fleet(args: string[], env: Record<string, string>, cwd: string): ManagedProcess {
  // the flag the quiniela-agency bin's shebang gives
  const p = run(AGENCY_JS, env, cwd, { args, nodeArgs: ["--max-semi-space-size=2"] });
  procs.push(p);
  return p;
}

function countLines(p: ManagedProcess, re: RegExp): number {
  return p.lines.filter((l) => re.test(l)).length;
}

describe("load generator: many agencies from one process", () => {
  test("200 agencies × 500 bets against one server: all finish, right winners, bets stored once", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const data = join(dir, "data");
    await generateDataset({ out: data, agencies: 200, bets: 500, seed: 31, crlf: true });
    const files = Array.from({ length: 200 }, (_, i) => join(data, `agency-${i + 1}.csv`));
    const server = await startServer({ AGENCIES: "200", LOGGING_LEVEL: "INFO" }, dir);
    procs.push(server);
    const f = fleet(
      ["--agencies", "1-200", "--data", data],
      { CLI_SERVER_ADDRESS: `127.0.0.1:${server.port}`, CLI_LOG_LEVEL: "INFO" },
      dir,
    );
    const code = await guard(f.code, 90_000, () => tail(f));
    assert.equal(code, 0, tail(f));
    const results = actions(f.lines, Action.CONSULTA_GANADORES);
    assert.equal(results.length, 200);
    const byId = new Map(results.map((m) => [Number(m.client_id), Number(m.cant_ganadores)]));
    assert.equal(byId.size, 200, "one line per agency");
    for (let id = 1; id <= 200; id++) {
      assert.equal(byId.get(id), defaultWinners(id), `agency ${id} cant_ganadores`);
    }
    // today's line, with the agency's id appended
    assert.match(
      f.lines.find((l) => l.includes(Action.CONSULTA_GANADORES))!,
      new RegExp(
        "INFO {5}" +
          logRe(
            Action.CONSULTA_GANADORES,
            "success",
            String.raw` \| cant_ganadores: \d \| client_id: \d+$`,
          ).source,
      ),
    );
    const summary = actions(f.lines, Action.AGENCIAS)[0]!;
    assert.equal(summary.result, "success");
    assert.equal(summary.agencies, "200");
    assert.equal(summary.bets_stored, "100000");
    assert.ok(Number(summary.max_rss_mb) < 150, `load generator peak RSS ${summary.max_rss_mb} MB`);
    assert.ok(!f.lines.some((l) => l.includes("result: fail")));
    assert.equal(await stop(server), 0);
    assert.equal(actions(server.lines, Action.SORTEO).length, 1);
    const cmp = compareStored(join(dir, "bets.csv"), files);
    assert.ok(cmp.equal, `rows ${cmp.rows}/${cmp.expected}\n${cmp.sample.join("\n")}`);
    assert.equal(cmp.rows, 100_000);
  });

  test("an id list with a gap (1-3,5) next to an ordinary agency 4", async () => {
    const dir = tempDir();
    dirs.push(dir);
    await generateDataset({ out: dir, agencies: 5, bets: 300, seed: 32 });
    const server = await startServer({ AGENCIES: "5", LOGGING_LEVEL: "INFO" }, dir);
    procs.push(server);
    const env = { CLI_SERVER_ADDRESS: `127.0.0.1:${server.port}` };
    const f = fleet(["--agencies", "1-3, 5", "--data", dir, "--concurrency", "2"], env, dir);
    const single = startAgency(4, server.port, { CLI_DATA_FILE: join(dir, "agency-4.csv") }, dir);
    procs.push(single);
    assert.deepEqual(await Promise.all([f.code, single.code]), [0, 0], tail(f));
    assert.deepEqual(
      actions(f.lines, Action.CONSULTA_GANADORES)
        .map((m) => [Number(m.client_id), Number(m.cant_ganadores)])
        .sort((a, b) => a[0]! - b[0]!),
      [1, 2, 3, 5].map((id) => [id, defaultWinners(id)]),
    );
    // the ordinary agency's line is unchanged (no client_id)
    assert.match(
      single.lines.find((l) => l.includes(Action.CONSULTA_GANADORES))!,
      logRe(Action.CONSULTA_GANADORES, "success", String.raw` \| cant_ganadores: 2$`),
    );
    assert.equal(await stop(server), 0);
  });

  test("all agencies wait for the draw at once; SIGTERM closes every connection, exit 0", async () => {
    const dir = tempDir();
    dirs.push(dir);
    await generateDataset({ out: dir, agencies: 100, bets: 200, seed: 33 });
    // agency 101 never comes: the draw cannot happen, every agency waits on its connection
    const server = await startServer({ AGENCIES: "101", LOGGING_LEVEL: "INFO" }, dir);
    procs.push(server);
    const f = fleet(
      ["--agencies", "1-100", "--data", dir],
      { CLI_SERVER_ADDRESS: `127.0.0.1:${server.port}`, CLI_LOG_LEVEL: "DEBUG" },
      dir,
    );
    const done = logRe(Action.NOTIFICAR_FIN, "success");
    await guard(
      (async () => {
        while (countLines(f, done) < 100) await new Promise((r) => setTimeout(r, 50));
      })(),
      60_000,
      () => tail(f),
    );
    f.child.kill("SIGTERM");
    assert.equal(await f.code, 0, tail(f));
    const closed = actions(f.lines, Action.CLOSE_CONNECTION).map((m) => Number(m.client_id));
    assert.equal(new Set(closed).size, 100, "every agency was connected, waiting for the draw");
    assert.ok(f.lines.some((l) => logRe(Action.SHUTDOWN, "success").test(l)));
    assert.equal(await stop(server), 0);
  });

  test("fatal errors: a missing file, a bad id list, a mode other than batch (exit 1)", async () => {
    const dir = tempDir();
    dirs.push(dir);
    await generateDataset({ out: dir, agencies: 2, bets: 10, seed: 34 });
    const env = { CLI_SERVER_ADDRESS: "127.0.0.1:9" };
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [["--agencies", "1-3", "--data", dir], {}, /cannot read data file .*agency-3\.csv: ENOENT/],
      [["--agencies", "3-1", "--data", dir], {}, /agency range 3-1 is empty/],
      [["--agencies", "1-2", "--data", dir], { CLI_MODE: "echo" }, /not mode echo/],
      [["--data", dir], {}, /--data and --concurrency go with --agencies/],
    ];
    for (const [args, extra, re] of cases) {
      const p = fleet(args, { ...env, ...extra }, dir);
      assert.equal(await p.code, 1, args.join(" "));
      assert.match(p.stderr, new RegExp(`^fatal: .*${re.source}`, "m"));
    }
  });
});
