// Agencies over mutual TLS with real processes: the course-shaped lottery, identity by
// certificate, plain-text agencies refused while the plain echo check keeps answering on the same
// port, a TLS connection cut mid-record resumed exactly-once, and the errors a user meets.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { FaultProxy } from "../../kit/fault-proxy.js";
import { actions, loggedWinnerCount } from "../../kit/logs.js";
import { stop } from "../../kit/proc.js";
import { cleanup, run, SERVER_JS, startAgency, startServer, tempDir } from "../../kit/programs.js";
import { exchange, RawClient } from "../../kit/raw-client.js";
import { tail } from "../../kit/report.js";
import { compareStored } from "../../kit/stored.js";
import { guard } from "../../kit/wait.js";
import { Action } from "../../shared/src/actions.js";
import { ErrorCode, isFault } from "../../shared/src/errors.js";
import { MsgType } from "../../shared/src/protocol/frame.js";
import { decodeFaultReply, encodeHello } from "../../shared/src/protocol/messages.js";
import { type CertFiles, makeCerts, mutualTlsEnv } from "../../tools/certs.js";
import { generateDataset } from "../../tools/gen-data.js";
import { COURSE_WINNERS, courseFiles } from "./lib/course.js";

const dirs: string[] = [];
after(() => dirs.forEach(cleanup));

function dir(): string {
  const d = tempDir();
  dirs.push(d);
  return d;
}

describe("agencies over mutual TLS", () => {
  let certs: CertFiles;
  let env: ReturnType<typeof mutualTlsEnv>;
  before(() => {
    certs = makeCerts({ out: join(dir(), "certs"), agencies: 5 });
    env = mutualTlsEnv(certs);
  });

  const agencyFile = (files: CertFiles, id: number, key: "agencyCert" | "agencyKey") =>
    files[key].replace("{id}", String(id));

  test("the course-shaped lottery of 5 agencies gives winners 2,3,3,2,0", async () => {
    const d = dir();
    const { files } = await courseFiles(d);
    const server = await startServer({ AGENCIES: "5", LOGGING_LEVEL: "INFO", ...env.serverEnv }, d);
    const agencies = files.map((f, i) =>
      startAgency(i + 1, server.port, { CLI_DATA_FILE: f, ...env.agencyEnv }, d),
    );
    const codes = await Promise.all(agencies.map((a) => a.code));
    assert.deepEqual(codes, [0, 0, 0, 0, 0], agencies.map((a) => a.stderr).join("\n"));
    assert.deepEqual(
      agencies.map((a) => loggedWinnerCount(a)),
      COURSE_WINNERS,
    );
    assert.equal(await stop(server), 0);
    assert.equal(actions(server.lines, Action.CONFIG_TLS)[0]?.client_certificates, "required");
    assert.equal(actions(server.lines, Action.SORTEO).length, 1);
    const all = [...server.lines, ...agencies.flatMap((a) => a.lines)];
    assert.ok(!all.some((l) => l.includes("result: fail")), "nothing fails in a normal run");
    assert.ok(compareStored(join(d, "bets.csv"), files).equal, "stored bets == inputs");
  });

  test("an agency holding agency 2's certificate cannot say HELLO as agency 1", async () => {
    const d = dir();
    await generateDataset({ out: d, agencies: 1, bets: [50], winners: [1], seed: 3 });
    const server = await startServer({ AGENCIES: "2", ...env.serverEnv }, d);
    const impostor = startAgency(
      1,
      server.port,
      {
        CLI_DATA_FILE: join(d, "agency-1.csv"),
        ...env.agencyEnv,
        CLI_TLS_CERT_FILE: agencyFile(certs, 2, "agencyCert"),
        CLI_TLS_KEY_FILE: agencyFile(certs, 2, "agencyKey"),
      },
      d,
    );
    assert.equal(await impostor.code, 1);
    assert.match(
      impostor.stderr,
      /^fatal: server error AUTH_FAILED: the certificate of agency 2 cannot say HELLO as agency 1$/m,
    );
    assert.equal(await stop(server), 0);
    const refused = actions(server.lines, Action.CONNECTION).filter(
      (m) => m.code === "AUTH_FAILED",
    );
    assert.equal(refused.length, 1, server.lines.join("\n"));
    assert.match(refused[0]!.reason!, /agency 2 cannot say HELLO as agency 1/);
    const stored = join(d, "bets.csv");
    assert.equal(existsSync(stored) ? readFileSync(stored, "utf8") : "", "", "nothing stored");
  });

  test("a plain-text agency is refused; the plain echo check answers on the same port", async () => {
    const d = dir();
    const server = await startServer({ AGENCIES: "1", ...env.serverEnv }, d);
    const raw = await RawClient.connect(server.port);
    const frames = await raw.request(encodeHello(raw.nextSeq(), { agency: 1, secret: "" }));
    await raw.closed;
    assert.equal(frames[0]?.type, MsgType.ERROR);
    const err = decodeFaultReply(frames[0]!.payload);
    assert.ok(!isFault(err) && err.code === ErrorCode.TLS_REQUIRED);

    const echo = await exchange(server.port, [Buffer.from("health check\n")], { end: true });
    assert.equal(echo.bytes.toString("utf8"), "health check\n");

    // the real agency, TLS not configured: stops at once with the server's reason
    const plainBet = startAgency(
      1,
      server.port,
      {
        CLI_MODE: "bet",
        NOMBRE: "A",
        APELLIDO: "B",
        DOCUMENTO: "1",
        NACIMIENTO: "2000-01-01",
        NUMERO: "1",
      },
      d,
    );
    assert.equal(await plainBet.code, 1);
    assert.match(plainBet.stderr, /^fatal: server error TLS_REQUIRED: .*requires TLS$/m);
    assert.equal(await stop(server), 0);
    const refused = actions(server.lines, Action.CONNECTION).filter(
      (m) => m.code === "TLS_REQUIRED",
    );
    assert.equal(refused.length, 2, "one line per refused connection");
    assert.deepEqual(
      actions(server.lines, Action.RECEIVE_MESSAGE).map((m) => m.msg),
      ["health check"],
    );
  });

  test("a TLS connection cut in the middle of a record resumes exactly-once", async () => {
    const d = dir();
    const bets = [3000, 2500, 2000, 1500, 1000];
    const winners = [1, 2, 0, 3, 1];
    await generateDataset({ out: d, agencies: 5, bets, winners, seed: 11 });
    const files = [1, 2, 3, 4, 5].map((i) => join(d, `agency-${i}.csv`));
    const server = await startServer({ AGENCIES: "5", ...env.serverEnv }, d);
    // the first connection's third BATCH-sized application-data record is cut halfway
    const proxy = new FaultProxy(server.port, 1, (index) =>
      index === 0
        ? { kind: "cut_up_record", at: 2, stallMs: 0 }
        : { kind: "pass", at: 0, stallMs: 0 },
    );
    const port = await proxy.listen();
    try {
      const agencies = files.map((f, i) =>
        startAgency(i + 1, port, { CLI_DATA_FILE: f, CLI_LOG_LEVEL: "DEBUG", ...env.agencyEnv }, d),
      );
      const codes = await guard(
        Promise.all(agencies.map((a) => a.code)),
        60_000,
        () => `agencies did not finish\n${tail(server)}`,
      );
      assert.deepEqual(codes, [0, 0, 0, 0, 0], agencies.map((a) => tail(a, 6)).join("\n--\n"));
      assert.ok(proxy.conns[0]?.fired, "the cut happened");
      const resumed = agencies.filter((a) =>
        actions(a.lines, Action.CONNECTION).some((m) => m.result === "in_progress"),
      );
      assert.equal(resumed.length, 1, "exactly the cut agency reconnected");
      const check = compareStored(join(d, "bets.csv"), files);
      assert.ok(check.equal, `missing ${check.missing}, extra ${check.extra}`);
      assert.deepEqual(
        agencies.map((a) => loggedWinnerCount(a)),
        winners,
      );
    } finally {
      await proxy.close();
      await stop(server);
    }
  });

  test("user errors get one clear line: wrong CA, foreign certificate, name, key", async () => {
    const d = dir();
    const other = makeCerts({ out: join(d, "other"), agencies: 1 });
    await generateDataset({ out: d, agencies: 1, bets: [10], winners: [0], seed: 5 });
    const server = await startServer({ AGENCIES: "1", ...env.serverEnv }, d);
    const agency = (extra: Record<string, string>) =>
      startAgency(
        1,
        server.port,
        { CLI_DATA_FILE: join(d, "agency-1.csv"), ...env.agencyEnv, ...extra },
        d,
      );
    const wrongCa = agency({ CLI_TLS_CA_FILE: other.ca });
    assert.equal(await wrongCa.code, 1);
    assert.match(wrongCa.stderr, /fatal: TLS: server certificate is not signed by the trusted CA/);

    const foreign = agency({
      CLI_TLS_CERT_FILE: agencyFile(other, 1, "agencyCert"),
      CLI_TLS_KEY_FILE: agencyFile(other, 1, "agencyKey"),
    });
    assert.equal(await foreign.code, 1);
    assert.match(
      foreign.stderr,
      /fatal: server error AUTH_FAILED: client certificate is not signed by the trusted CA/,
    );

    const name = agency({ CLI_TLS_SERVERNAME: "elsewhere" });
    assert.equal(await name.code, 1);
    assert.match(name.stderr, /fatal: TLS: server certificate does not carry the name "elsewhere"/);

    const key = agency({ CLI_TLS_KEY_FILE: agencyFile(certs, 2, "agencyKey") });
    assert.equal(await key.code, 1);
    assert.match(key.stderr, /^fatal: CLI_TLS_KEY_FILE: the key in .* does not match/m);
    assert.equal(await stop(server), 0);
    const auth = actions(server.lines, Action.CONNECTION).filter((m) => m.code === "AUTH_FAILED");
    assert.equal(auth.length, 1, "the foreign certificate: one line");

    const badServer = run(SERVER_JS, { ...env.serverEnv, TLS_KEY_FILE: certs.caKey }, d);
    assert.equal(await badServer.code, 1);
    assert.match(
      badServer.stderr,
      /^fatal: TLS_KEY_FILE: the key in .* does not match the certificate/m,
    );
  });
});
