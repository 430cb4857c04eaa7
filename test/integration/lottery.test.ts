// The whole lottery with real processes on loopback: server + agencies, bet mode, echo mode.

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { actions, logRe } from "../../kit/logs.js";
import { stop } from "../../kit/proc.js";
import { cleanup, startAgency, startServer, tempDir } from "../../kit/programs.js";
import { compareStored } from "../../kit/stored.js";
import { Action } from "../../shared/src/actions.js";
import { COURSE_WINNERS, courseFiles } from "./lib/course.js";

describe("lottery with real processes", () => {
  const dirs: string[] = [];
  after(() => dirs.forEach(cleanup));

  test("5 agencies with the course files: all bets stored once, draw once, right winners", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const { files } = await courseFiles(dir);
    const server = await startServer({ AGENCIES: "5", LOGGING_LEVEL: "INFO" }, dir);
    const agencies = files.map((f, i) =>
      startAgency(i + 1, server.port, { CLI_DATA_FILE: f, CLI_BATCH_MAXAMOUNT: "100" }, dir),
    );
    const codes = await Promise.all(agencies.map((a) => a.code));
    assert.deepEqual(codes, [0, 0, 0, 0, 0], agencies.map((a) => a.stderr).join("\n"));
    const winners = agencies.map((a) =>
      Number(actions(a.lines, Action.CONSULTA_GANADORES)[0]?.cant_ganadores),
    );
    assert.deepEqual(winners, COURSE_WINNERS);
    assert.equal(await stop(server), 0);
    assert.equal(actions(server.lines, Action.SORTEO).length, 1);
    const received = actions(server.lines, Action.APUESTA_RECIBIDA);
    assert.ok(received.every((m) => m.result === "success"));
    assert.equal(
      received.reduce((n, m) => n + Number(m.cantidad), 0),
      78697,
    );
    // every batch but each agency's last is full (100 bets)
    assert.ok(received.filter((m) => m.cantidad !== "100").length <= 5);
    const all = [...server.lines, ...agencies.flatMap((a) => a.lines)];
    assert.equal(actions(all, "").length, 0);
    assert.ok(!all.some((l) => l.includes("result: fail")), "nothing fails in a normal run");
    // python3's csv module reads the stored file; compared, as a multiset, with the inputs
    const cmp = compareStored(join(dir, "bets.csv"), files);
    assert.deepEqual({ equal: cmp.equal, rows: cmp.rows }, { equal: true, rows: 78697 });
  });

  test("bet mode: the agency's one bet is stored and confirmed", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const server = await startServer({ AGENCIES: "1" }, dir);
    const agency = startAgency(
      1,
      server.port,
      {
        CLI_MODE: "bet",
        NOMBRE: "Santiago Lionel",
        APELLIDO: "Lorca",
        DOCUMENTO: "30904465",
        NACIMIENTO: "1999-03-17",
        NUMERO: "7574",
      },
      dir,
    );
    assert.equal(await agency.code, 0, agency.stderr);
    assert.equal(await stop(server), 0);
    const sent = actions(agency.lines, Action.APUESTA_ENVIADA);
    assert.deepEqual(
      sent.map((m) => [m.result, m.dni, m.numero]),
      [["success", "30904465", "7574"]],
    );
    const stored = actions(server.lines, Action.APUESTA_ALMACENADA);
    assert.deepEqual(
      stored.map((m) => [m.result, m.dni, m.numero]),
      [["success", "30904465", "7574"]],
    );
    assert.equal(actions(agency.lines, Action.CONSULTA_GANADORES)[0]?.cant_ganadores, "1");
    assert.equal(
      readFileSync(join(dir, "bets.csv"), "utf8"),
      "1,Santiago Lionel,Lorca,30904465,1999-03-17,7574\r\n",
    );
  });

  test("echo mode: every message is echoed and logged with the SPEC's lines", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const server = await startServer({}, dir);
    writeFileSync(
      join(dir, "config.yaml"),
      `server:\n  address: "127.0.0.1:${server.port}"\nloop:\n  amount: 3\n  period: "10ms"\nlog:\n  level: "INFO"\n`,
    );
    const agency = startAgency(4, server.port, { CLI_MODE: "echo" }, dir);
    assert.equal(await agency.code, 0, agency.stderr);
    assert.equal(await stop(server), 0);
    const config = agency.lines.find((l) => logRe(Action.CONFIG).test(l))!;
    assert.match(
      config,
      new RegExp(
        `INFO {5}action: ${Action.CONFIG} \\| result: success \\| client_id: 4 \\| server_address: 127\\.0\\.0\\.1:${server.port} \\| loop_amount: 3 \\| loop_period: 10ms \\| log_level: INFO$`,
      ),
    );
    const got = actions(agency.lines, Action.RECEIVE_MESSAGE).map((m) => m.msg);
    assert.deepEqual(
      got,
      [1, 2, 3].map((n) => `[CLIENT 4] Message N°${n}`),
    );
    assert.match(
      agency.lines.find((l) => l.includes(Action.RECEIVE_MESSAGE))!,
      new RegExp(
        String.raw`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO {5}` +
          logRe(
            Action.RECEIVE_MESSAGE,
            "success",
            String.raw` \| client_id: 4 \| msg: \[CLIENT 4\] Message N°1$`,
          ).source,
      ),
    );
    assert.equal(actions(agency.lines, Action.LOOP_FINISHED)[0]?.client_id, "4");
    const srv = actions(server.lines, Action.RECEIVE_MESSAGE);
    assert.deepEqual(
      srv.map((m) => [m.ip, m.msg]),
      got.map((m) => ["127.0.0.1", m]),
    );
    assert.match(
      server.lines[0]!,
      new RegExp(
        "DEBUG {4}" +
          logRe(
            Action.CONFIG,
            "success",
            String.raw` \| port: 0 \| listen_backlog: 5 \| logging_level: DEBUG$`,
          ).source,
      ),
    );
  });

  test("identity: with AGENCY_SECRETS an agency must present its own secret", async () => {
    const dir = tempDir();
    dirs.push(dir);
    writeFileSync(join(dir, "a1.csv"), "Ana,Pérez,30111222,1990-01-01,7574\n");
    const server = await startServer({ AGENCIES: "1", AGENCY_SECRETS: "1:s3cr3t" }, dir);
    const env = { CLI_DATA_FILE: join(dir, "a1.csv") };
    const impostor = startAgency(1, server.port, { ...env, CLI_SECRET: "guess" }, dir);
    assert.equal(await impostor.code, 1);
    assert.match(impostor.stderr, /^fatal: server error AUTH_FAILED/m);
    await server.waitFor(/code: AUTH_FAILED/);
    const anonymous = startAgency(1, server.port, env, dir);
    assert.equal(await anonymous.code, 1);
    const real = startAgency(1, server.port, { ...env, CLI_SECRET: "s3cr3t" }, dir);
    assert.equal(await real.code, 0, real.stderr);
    assert.equal(actions(real.lines, Action.CONSULTA_GANADORES)[0]?.cant_ganadores, "1");
    assert.equal(await stop(server), 0);
    assert.equal(readFileSync(join(dir, "bets.csv"), "utf8").split("\r\n").length - 1, 1);
  });
});
