// Configuration: server INI and agency YAML, environment overrides, defaults, bad values.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  type Env,
  loadClientConfig,
  loadServerConfig,
  parseAgencyIds,
  readConfigText,
  splitAddress,
} from "../../shared/src/config.js";
import { QuinielaError } from "../../shared/src/errors.js";

const COURSE_INI =
  "[DEFAULT]\nSERVER_PORT = 12345\nSERVER_IP = server\nSERVER_LISTEN_BACKLOG = 5\nLOGGING_LEVEL = INFO\n";

const COURSE_YAML =
  'server:\n  address: "server:12345"\nloop:\n  amount: 5\n  period: "100ms"\nlog:\n  level: "DEBUG"\nbatch:\n  maxAmount: 10\n';

function badConfig(run: () => unknown, what: string): void {
  assert.throws(
    run,
    (err: unknown) => err instanceof QuinielaError && err.code === "BAD_CONFIG",
    `${what}: expected QuinielaError BAD_CONFIG`,
  );
}

/** Each field of `want` equals the same field of `actual`. */
function assertFields<T extends object>(actual: T, want: Partial<T>): void {
  for (const key of Object.keys(want) as Array<keyof T>) {
    assert.equal(actual[key], want[key], String(key));
  }
}

describe("server config (config.ini)", () => {
  it("reads the course's file", () => {
    const c = loadServerConfig(COURSE_INI, {});
    assertFields(c, {
      port: 12345,
      ip: "server",
      listenBacklog: 5,
      loggingLevel: "INFO",
      loggingLevelText: "INFO",
    });
  });

  it("reads the file without a trailing newline and with CRLF", () => {
    assert.equal(loadServerConfig(COURSE_INI.trimEnd(), {}).loggingLevel, "INFO");
    assert.equal(loadServerConfig(COURSE_INI.replace(/\n/g, "\r\n"), {}).port, 12345);
  });

  it("defaults for everything not in the file", () => {
    const c = loadServerConfig("", {});
    assertFields(c, {
      port: 12345,
      ip: "0.0.0.0",
      listenBacklog: 5,
      listenFd: null,
      loggingLevel: "INFO",
      agencies: 5,
      storagePath: "./bets.csv",
      sync: "fdatasync",
      idleTimeoutMs: 60_000,
      helloTimeoutMs: 10_000,
      firstByteTimeoutMs: 10_000,
      frameTimeoutMs: 10_000,
      tlsHandshakeTimeoutMs: 10_000,
      maxConnections: 1024,
    });
    assert.equal(c.secrets.size, 0);
  });

  it("environment variables of the same names win over the file", () => {
    const env: Env = {
      SERVER_PORT: "23456",
      SERVER_IP: "127.0.0.1",
      SERVER_LISTEN_BACKLOG: "64",
      LOGGING_LEVEL: "DEBUG",
      AGENCIES: "3",
      STORAGE_FILEPATH: "/tmp/bets.csv",
      STORAGE_SYNC: "none",
      IDLE_TIMEOUT: "1m30s",
      MAX_CONNECTIONS: "10",
    };
    const c = loadServerConfig(`${COURSE_INI}AGENCIES = 5\nSTORAGE_FILEPATH = ./x.csv\n`, env);
    assertFields(c, {
      port: 23456,
      ip: "127.0.0.1",
      listenBacklog: 64,
      loggingLevel: "DEBUG",
      agencies: 3,
      storagePath: "/tmp/bets.csv",
      sync: "none",
      idleTimeoutMs: 90_000,
      maxConnections: 10,
    });
  });

  it("HELLO_TIMEOUT bounds the first byte, HELLO, a begun frame and a TLS handshake", () => {
    const c = loadServerConfig(COURSE_INI, { HELLO_TIMEOUT: "3s" });
    assertFields(c, {
      helloTimeoutMs: 3000,
      firstByteTimeoutMs: 3000,
      frameTimeoutMs: 3000,
      tlsHandshakeTimeoutMs: 3000,
    });
  });

  it("an empty environment variable does not override the file", () => {
    assert.equal(loadServerConfig(COURSE_INI, { SERVER_PORT: "" }).port, 12345);
  });

  it("keys are case-insensitive (configparser semantics); the level keeps its spelling", () => {
    const c = loadServerConfig(
      "[DEFAULT]\nserver_port = 1111\nLogging_Level = debug\nagencies=2\n",
      {},
    );
    assertFields(c, { port: 1111, loggingLevel: "DEBUG", loggingLevelText: "debug", agencies: 2 });
  });

  it("keys outside any section are read too", () => {
    assert.equal(loadServerConfig("SERVER_PORT = 4321\n", {}).port, 4321);
  });

  it("more keys in the same file (agency count, storage, secrets)", () => {
    const c = loadServerConfig(
      `${COURSE_INI}AGENCIES = 1\nSTORAGE_FILEPATH = /data/bets.csv\nAGENCY_SECRETS = 1:abc, 2=def\n`,
      {},
    );
    assert.equal(c.agencies, 1);
    assert.equal(c.storagePath, "/data/bets.csv");
    assert.deepEqual(
      [...c.secrets],
      [
        [1, "abc"],
        [2, "def"],
      ],
    );
  });

  it("WARN is accepted as WARNING", () => {
    assert.equal(loadServerConfig("LOGGING_LEVEL = warn", {}).loggingLevel, "WARNING");
  });

  it("SERVER_LISTEN_FD: an inherited listening socket instead of SERVER_IP:SERVER_PORT", () => {
    assert.equal(loadServerConfig(COURSE_INI, { SERVER_LISTEN_FD: "3" }).listenFd, 3);
    assert.equal(loadServerConfig(`${COURSE_INI}SERVER_LISTEN_FD = 7\n`, {}).listenFd, 7);
  });

  const bad: Array<[string, string, Env]> = [
    ["port not a number", "SERVER_PORT = abc", {}],
    ["listen fd of standard I/O", COURSE_INI, { SERVER_LISTEN_FD: "1" }],
    ["listen fd not a number", "SERVER_LISTEN_FD = three", {}],
    ["port too big", "SERVER_PORT = 70000", {}],
    ["negative port", "SERVER_PORT = -1", {}],
    ["decimal port", "SERVER_PORT = 12.5", {}],
    ["bad port from env", COURSE_INI, { SERVER_PORT: "x" }],
    ["backlog not a number", "SERVER_LISTEN_BACKLOG = many", {}],
    ["unknown level", "LOGGING_LEVEL = LOUD", {}],
    ["unknown level from env", COURSE_INI, { LOGGING_LEVEL: "verbose" }],
    ["negative agencies", "AGENCIES = -1", {}],
    ["agencies not a number", COURSE_INI, { AGENCIES: "five" }],
    ["unknown sync mode", "STORAGE_SYNC = sometimes", {}],
    ["duration without unit", "IDLE_TIMEOUT = 5", {}],
    ["negative duration", "IDLE_TIMEOUT = -5s", {}],
    ["zero max connections", "MAX_CONNECTIONS = 0", {}],
    ["malformed secrets", "AGENCY_SECRETS = nope", {}],
  ];
  for (const [name, ini, env] of bad) {
    it(`refuses ${name} with BAD_CONFIG`, () => badConfig(() => loadServerConfig(ini, env), name));
  }
});

describe("agency config (config.yaml)", () => {
  it("reads the file as the course's tests write it", () => {
    const c = loadClientConfig(COURSE_YAML, {});
    assertFields(c, {
      serverAddress: "server:12345",
      host: "server",
      port: 12345,
      loopAmount: 5,
      loopPeriodMs: 100,
      loopPeriodText: "100ms",
      logLevel: "DEBUG",
      logLevelText: "DEBUG",
      batchMaxAmount: 10,
      id: 1,
      mode: "batch",
      dataFile: "./.data/agency-1.csv",
    });
  });

  it("defaults for an empty file", () => {
    const c = loadClientConfig("", {});
    assertFields(c, {
      serverAddress: "localhost:12345",
      loopAmount: 5,
      loopPeriodMs: 5000,
      loopPeriodText: "5s",
      logLevel: "INFO",
      batchMaxAmount: 100,
      window: 32,
      secret: "",
      retryBudgetMs: 60_000,
    });
  });

  it("CLI_* environment variables win over the file", () => {
    const c = loadClientConfig(COURSE_YAML, {
      CLI_ID: "3",
      CLI_SERVER_ADDRESS: "127.0.0.1:5000",
      CLI_LOOP_AMOUNT: "7",
      CLI_LOOP_PERIOD: "1m30s",
      CLI_LOG_LEVEL: "info",
      CLI_BATCH_MAXAMOUNT: "50",
      CLI_MODE: "echo",
      CLI_DATA_FILE: "/data/agency.csv",
    });
    assertFields(c, {
      id: 3,
      serverAddress: "127.0.0.1:5000",
      host: "127.0.0.1",
      port: 5000,
      loopAmount: 7,
      loopPeriodMs: 90_000,
      loopPeriodText: "1m30s",
      logLevel: "INFO",
      logLevelText: "info",
      batchMaxAmount: 50,
      mode: "echo",
      dataFile: "/data/agency.csv",
    });
  });

  it("CLI_ID picks the agency's data file by default", () => {
    assert.equal(loadClientConfig(COURSE_YAML, { CLI_ID: "4" }).dataFile, "./.data/agency-4.csv");
  });

  it("an empty environment variable does not override the file", () => {
    assert.equal(loadClientConfig(COURSE_YAML, { CLI_LOOP_AMOUNT: "" }).loopAmount, 5);
  });

  it("loopPeriodText prints the period in Go form", () => {
    const cases: Array<[string, string]> = [
      ["100ms", "100ms"],
      ["5s", "5s"],
      ["1m30s", "1m30s"],
      ["90s", "1m30s"],
      ["5000ms", "5s"],
      ["1.5s", "1.5s"],
      ["1h", "1h0m0s"],
      ["0s", "0s"],
    ];
    for (const [period, text] of cases) {
      const quoted = loadClientConfig(`loop:\n  period: "${period}"\n`, {});
      assert.equal(quoted.loopPeriodText, text, `quoted ${period}`);
      const plain = loadClientConfig(`loop:\n  period: ${period}\n`, {});
      assert.equal(plain.loopPeriodText, text, `unquoted ${period}`);
      assert.equal(
        loadClientConfig("", { CLI_LOOP_PERIOD: period }).loopPeriodText,
        text,
        `env ${period}`,
      );
    }
  });

  it("IPv6 addresses in brackets", () => {
    assert.deepEqual(splitAddress("[::1]:12345"), { host: "::1", port: 12345 });
    assert.deepEqual(splitAddress("server:1"), { host: "server", port: 1 });
  });

  it("a list of server addresses, from the file or the environment; logged as configured", () => {
    const file = loadClientConfig('server:\n  address: "s1:1, s2:2,[::1]:3"\n', {});
    assert.equal(file.serverAddress, "s1:1, s2:2,[::1]:3");
    assert.deepEqual(file.servers, [
      { host: "s1", port: 1 },
      { host: "s2", port: 2 },
      { host: "::1", port: 3 },
    ]);
    assert.equal(file.host, "s1");
    assert.equal(file.port, 1);
    const env = loadClientConfig(COURSE_YAML, { CLI_SERVER_ADDRESS: "127.0.0.1:5,127.0.0.1:6" });
    assert.deepEqual(
      env.servers.map((s) => s.port),
      [5, 6],
    );
    assert.deepEqual(loadClientConfig(COURSE_YAML, {}).servers, [{ host: "server", port: 12345 }]);
  });

  it("agency id lists for the load generator", () => {
    assert.deepEqual(parseAgencyIds("1-5,8"), [1, 2, 3, 4, 5, 8]);
    assert.deepEqual(parseAgencyIds("3"), [3]);
    assert.deepEqual(parseAgencyIds(" 7 - 9 , 2, 8 "), [2, 7, 8, 9]);
    assert.equal(parseAgencyIds("1-1000").length, 1000);
    for (const bad of ["", "0", "5-3", "a-b", "1-", "1,,2", "1-5-7", "1-200000"]) {
      badConfig(() => parseAgencyIds(bad), `agencies "${bad}"`);
    }
  });

  const bad: Array<[string, string, Env]> = [
    ["address without port", 'server:\n  address: "server"\n', {}],
    ["address with port 0", 'server:\n  address: "server:0"\n', {}],
    ["address with port 70000", "", { CLI_SERVER_ADDRESS: "server:70000" }],
    ["address without host", "", { CLI_SERVER_ADDRESS: ":12345" }],
    ["a bad entry in an address list", "", { CLI_SERVER_ADDRESS: "a:1,b,c:3" }],
    ["an empty entry in an address list", 'server:\n  address: "a:1,,c:3"\n', {}],
    ["amount not a number", "loop:\n  amount: many\n", {}],
    ["negative amount", "", { CLI_LOOP_AMOUNT: "-1" }],
    ["period without unit", 'loop:\n  period: "5"\n', {}],
    ["negative period", "", { CLI_LOOP_PERIOD: "-1s" }],
    ["period with a bad unit", "", { CLI_LOOP_PERIOD: "5sec" }],
    ["unknown level", 'log:\n  level: "LOUD"\n', {}],
    ["maxAmount 0", "batch:\n  maxAmount: 0\n", {}],
    ["maxAmount not a number", "", { CLI_BATCH_MAXAMOUNT: "ten" }],
    ["unknown mode", "", { CLI_MODE: "lottery" }],
    ["id 0", "", { CLI_ID: "0" }],
    ["id not a number", "", { CLI_ID: "uno" }],
    ["invalid YAML", "server: [\n", {}],
    ["a mapping where a scalar is expected", "server:\n  address:\n    host: x\n", {}],
  ];
  for (const [name, yaml, env] of bad) {
    it(`refuses ${name} with BAD_CONFIG`, () => badConfig(() => loadClientConfig(yaml, env), name));
  }
});

describe("readConfigText", () => {
  const dir = mkdtempSync(join(tmpdir(), "quiniela-config-test-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reads a file", () => {
    const p = join(dir, "config.ini");
    writeFileSync(p, COURSE_INI);
    assert.equal(readConfigText(p, true), COURSE_INI);
  });

  it("a missing default file is empty; a missing explicit file is BAD_CONFIG", () => {
    const p = join(dir, "absent.yaml");
    assert.equal(readConfigText(p, false), "");
    badConfig(() => readConfigText(p, true), "explicit missing file");
  });
});
