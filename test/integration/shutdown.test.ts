// SIGTERM: server and agency close their resources, log each one, and exit 0; an agency with
// invalid rows reports each one, still delivers every valid row and completes the draw.

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { actions, logRe, parseLogLine } from "../../kit/logs.js";
import { stop } from "../../kit/proc.js";
import { cleanup, startAgency, startServer, tempDir } from "../../kit/programs.js";
import { Action } from "../../shared/src/actions.js";
import { generateDataset } from "../../tools/gen-data.js";
import { MIXED_ROWS } from "../lib/bets.js";

describe("shutdown and data problems", () => {
  const dirs: string[] = [];
  after(() => dirs.forEach(cleanup));

  test("SIGTERM to the server mid-ingest: stops accepting, closes connections and files, exit 0", async () => {
    const dir = tempDir();
    dirs.push(dir);
    await generateDataset({ out: dir, agencies: 2, bets: 200_000, winners: 1, seed: 3 });
    const server = await startServer({ AGENCIES: "2" }, dir);
    const agencies = [1, 2].map((i) =>
      startAgency(
        i,
        server.port,
        { CLI_DATA_FILE: join(dir, `agency-${i}.csv`), CLI_RETRY_BUDGET: "1s" },
        dir,
      ),
    );
    await server.waitFor(/apuesta_recibida \| result: success/);
    assert.equal(await stop(server), 0, server.stderr);
    const lines = server.lines.join("\n");
    for (const re of [
      logRe(Action.SHUTDOWN, "in_progress"),
      logRe(Action.CLOSE_LISTENER, "success"),
      logRe(Action.CLOSE_FILE, "success", String.raw` \| path: \.\/bets\.csv$`, "m"),
      logRe(Action.CLOSE_FILE, "success", String.raw` \| path: \.\/bets\.csv\.state`),
      logRe(Action.CONNECTION, "success", " .*code: SHUTTING_DOWN"),
      logRe(Action.SHUTDOWN, "success"),
    ]) {
      assert.match(lines, re);
    }
    // the agencies cannot reach the server any more: they give up with a one-line reason
    for (const a of agencies) {
      assert.equal(await a.code, 1);
      assert.match(a.stderr, /^fatal: .*unreachable/m);
    }
    // whatever was acknowledged is in the file, whole rows only
    const text = readFileSync(join(dir, "bets.csv"), "utf8");
    assert.ok(text === "" || text.endsWith("\r\n"));
  });

  test("SIGTERM to an agency mid-run: closes socket and file, exit 0; the server is undisturbed", async () => {
    const dir = tempDir();
    dirs.push(dir);
    await generateDataset({ out: dir, agencies: 1, bets: 300_000, winners: 1, seed: 4 });
    const server = await startServer({ AGENCIES: "1" }, dir);
    const agency = startAgency(
      1,
      server.port,
      { CLI_DATA_FILE: join(dir, "agency-1.csv"), CLI_LOG_LEVEL: "DEBUG" },
      dir,
    );
    await agency.waitFor(/apuesta_enviada \| result: in_progress/);
    agency.child.kill("SIGTERM");
    assert.equal(await agency.code, 0, agency.stderr);
    const lines = agency.lines.join("\n");
    assert.match(lines, logRe(Action.CLOSE_CONNECTION, "success", String.raw` \| client_id: 1`));
    assert.match(lines, logRe(Action.CLOSE_FILE, "success", String.raw` \| client_id: 1`));
    assert.match(lines, logRe(Action.SHUTDOWN, "success"));
    // a new run of the same agency resumes and completes
    const again = startAgency(1, server.port, { CLI_DATA_FILE: join(dir, "agency-1.csv") }, dir);
    assert.equal(await again.code, 0, again.stderr);
    assert.equal(actions(again.lines, Action.CONSULTA_GANADORES)[0]?.cant_ganadores, "1");
    assert.equal(await stop(server), 0);
    const rows = readFileSync(join(dir, "bets.csv"), "utf8").split("\r\n").length - 1;
    assert.equal(rows, 300_000);
  });

  test("SIGTERM to an echo client mid-loop and to an idle server: exit 0", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const server = await startServer({}, dir);
    const echo = startAgency(
      2,
      server.port,
      { CLI_MODE: "echo", CLI_LOOP_AMOUNT: "500", CLI_LOOP_PERIOD: "150ms" },
      dir,
    );
    await echo.waitFor(/receive_message \| result: success/);
    echo.child.kill("SIGTERM");
    assert.equal(await echo.code, 0);
    assert.match(echo.lines.join("\n"), logRe(Action.SHUTDOWN, "success"));
    assert.equal(await stop(server), 0);
  });

  test("a file with invalid rows: each reported with its line, valid rows delivered, draw done, exit 3", async () => {
    const dir = tempDir();
    dirs.push(dir);
    writeFileSync(join(dir, "a.csv"), `${MIXED_ROWS.join("\r\n")}\r\n`);
    const server = await startServer({ AGENCIES: "1" }, dir);
    const agency = startAgency(1, server.port, { CLI_DATA_FILE: join(dir, "a.csv") }, dir);
    assert.equal(await agency.code, 3, agency.stderr);
    assert.equal(await stop(server), 0);
    const bad = actions(agency.lines, Action.LEER_APUESTA);
    assert.deepEqual(
      bad.map((m) => [m.line, m.code]),
      [
        ["2", "INVALID_DATE"],
        ["3", "INVALID_NUMBER"],
        ["5", "MALFORMED"],
        ["6", "EMPTY_FIELD"],
      ],
    );
    assert.equal(actions(agency.lines, Action.CONSULTA_GANADORES)[0]?.cant_ganadores, "2");
    assert.equal(
      readFileSync(join(dir, "bets.csv"), "utf8"),
      '1,Ana,Pérez,30111222,1990-01-01,7574\r\n1,"Fornerón, Juan ""el Tano""",Álvarez,00000001,2000-01-01,0\r\n1,Zoe,D\'Angelo,30111226,1980-12-31,7574\r\n',
    );
    assert.ok(actions(server.lines, Action.APUESTA_RECIBIDA).every((m) => m.result === "success"));
  });

  test("fatal errors: one-line reason on stderr and exit 1", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const missing = startAgency(1, 1, { CLI_DATA_FILE: join(dir, "nope.csv") }, dir);
    assert.equal(await missing.code, 1);
    assert.match(missing.stderr, /^fatal: cannot read data file .*nope\.csv: ENOENT\n$/);
    const badConfig = startAgency(1, 1, { CLI_LOOP_PERIOD: "soon" }, dir);
    assert.equal(await badConfig.code, 1);
    assert.match(badConfig.stderr, /^fatal: loop\.period must be a duration/m);
    writeFileSync(join(dir, "a.csv"), "Ana,Pérez,30111222,1990-01-01,7574\n");
    // nobody listens on this port: the agency retries quietly, then gives up
    const lonely = startAgency(
      1,
      1,
      { CLI_DATA_FILE: join(dir, "a.csv"), CLI_RETRY_BUDGET: "300ms" },
      dir,
    );
    assert.equal(await lonely.code, 1);
    assert.match(lonely.stderr, /^fatal: server 127\.0\.0\.1:1 unreachable/m);
    // the retries themselves are quiet: the only failure logged is the final one
    assert.deepEqual(
      lonely.lines.filter((l) => l.includes("result: fail")).map((l) => parseLogLine(l)?.action),
      [Action.AGENCY],
    );
  });
});
