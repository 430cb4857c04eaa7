// generar-compose.sh on its own: arguments, generated structure, modes, server replicas
// (SERVER_REPLICAS / --replicas), and (when Docker is usable) that `docker compose config`
// accepts the output. No images needed.

import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse } from "yaml";
import {
  backupFiles,
  COMPOSE_FILE,
  dockerStatus,
  IN_CI,
  ROOT,
  restoreFiles,
  run,
} from "./lib/harness.mjs";

const SCRIPT = join(ROOT, "generar-compose.sh");
// Keys of server/config.ini and client/config.yaml: the generated file must not
// shadow them with environment variables (SPEC §2.2).
const SHADOWING = [
  "SERVER_PORT",
  "SERVER_IP",
  "SERVER_LISTEN_BACKLOG",
  "LOGGING_LEVEL",
  "CLI_SERVER_ADDRESS",
  "CLI_LOOP_AMOUNT",
  "CLI_LOOP_PERIOD",
  "CLI_LOG_LEVEL",
  "CLI_BATCH_MAXAMOUNT",
];

function generate(args, { shell = "sh", mode, replicas, cwd = ROOT } = {}) {
  return run(shell, [SCRIPT, ...args], {
    cwd,
    env: { CLIENT_MODE: mode ?? "", SERVER_REPLICAS: replicas ?? "" },
  });
}

/**
 * Runs the script in an empty temporary folder, where it must refuse: exit 2, usage on stderr,
 * nothing on stdout, no file written. Returns the run (for the message).
 */
function generateRefused(args, opts = {}) {
  const dir = mkdtempSync(join(tmpdir(), "gc-"));
  try {
    const r = generate(args, { ...opts, cwd: dir });
    assert.equal(r.status, 2, `exit status (stderr: ${r.stderr})`);
    assert.match(r.stderr, /usage: generar-compose\.sh/);
    assert.equal(r.stdout, "");
    assert.deepEqual(readdirSync(dir), [], "no file may be written");
    return r;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function generateParsed(clients, opts = {}) {
  const r = generate([COMPOSE_FILE, String(clients)], opts);
  assert.equal(r.status, 0, r.stderr);
  const text = readFileSync(join(ROOT, COMPOSE_FILE), "utf8");
  return { text, doc: parse(text) };
}

const envOf = (service) =>
  Object.fromEntries(
    (service.environment ?? []).map((e) => {
      const i = e.indexOf("=");
      return [e.slice(0, i), e.slice(i + 1)];
    }),
  );

const mountsOf = (service) =>
  (service.volumes ?? []).map((v) =>
    typeof v === "string"
      ? { source: v.split(":")[0], target: v.split(":")[1], readOnly: v.endsWith(":ro") }
      : { source: v.source, target: v.target, readOnly: v.read_only === true },
  );

describe("generar-compose.sh", () => {
  before(backupFiles);
  after(restoreFiles);

  describe("rejects bad arguments: usage on stderr, exit 2, no file written", () => {
    const cases = [
      ["no arguments", []],
      ["one argument", ["out.yaml"]],
      ["three arguments", ["out.yaml", "1", "2"]],
      ["negative clients", ["out.yaml", "-1"]],
      ["non-numeric clients", ["out.yaml", "abc"]],
      ["decimal clients", ["out.yaml", "1.5"]],
      ["empty clients", ["out.yaml", ""]],
      ["too many clients for a /24", ["out.yaml", "251"]],
      ["empty output name", ["", "1"]],
      ["missing output directory", ["no/such/dir/out.yaml", "1"]],
      ["unknown option", ["--clients", "3", "out.yaml"]],
    ];
    for (const [name, args] of cases) {
      test(name, () => {
        generateRefused(args);
      });
    }

    test("invalid CLIENT_MODE", () => {
      generateRefused(["out.yaml", "2"], { mode: "lottery" });
    });
  });

  test("0 clients: only the server, told to wait for 0 agencies", () => {
    const { doc } = generateParsed(0);
    assert.equal(doc.name, "tp0");
    assert.deepEqual(Object.keys(doc.services), ["server"]);
    assert.equal(envOf(doc.services.server).AGENCIES, "0");
  });

  for (const shell of ["sh", "bash"]) {
    test(`3 batch agencies (run with ${shell}): names, network, mounts, environment`, () => {
      const { doc } = generateParsed(3, { shell });
      assert.equal(doc.name, "tp0");
      assert.deepEqual(Object.keys(doc.services), ["server", "client1", "client2", "client3"]);
      assert.deepEqual(doc.networks.testing_net.ipam.config, [{ subnet: "172.25.125.0/24" }]);

      const server = doc.services.server;
      assert.equal(server.container_name, "server");
      assert.equal(server.image, "server:latest");
      assert.deepEqual(server.networks, ["testing_net"]);
      assert.equal(envOf(server).AGENCIES, "3");
      assert.deepEqual(mountsOf(server), [
        { source: "./server/config.ini", target: "/app/config.ini", readOnly: true },
      ]);

      for (const i of [1, 2, 3]) {
        const c = doc.services[`client${i}`];
        assert.equal(c.container_name, `client${i}`);
        assert.equal(c.image, "client:latest");
        assert.deepEqual(c.networks, ["testing_net"]);
        assert.deepEqual(envOf(c), { CLI_ID: String(i), CLI_MODE: "batch", CLI_START_DELAY: "2s" });
        assert.deepEqual(mountsOf(c), [
          { source: "./client/config.yaml", target: "/app/config.yaml", readOnly: true },
          // the folder (always in the repository), so no mount points at a missing file
          { source: "./.data", target: "/app/.data", readOnly: true },
        ]);
      }
      for (const s of Object.values(doc.services)) {
        for (const key of SHADOWING) assert.ok(!(key in envOf(s)), `${key} shadows a config key`);
      }
    });
  }

  test("echo mode (CLIENT_MODE=echo and --mode echo agree): no data mount", () => {
    const viaEnv = generateParsed(2, { mode: "echo" }).text;
    const r = generate(["--mode", "echo", COMPOSE_FILE, "2"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(join(ROOT, COMPOSE_FILE), "utf8"), viaEnv);
    const doc = parse(viaEnv);
    for (const i of [1, 2]) {
      const c = doc.services[`client${i}`];
      assert.equal(envOf(c).CLI_MODE, "echo");
      assert.ok(!("CLI_START_DELAY" in envOf(c)), "echo clients start at once");
      assert.deepEqual(
        mountsOf(c).map((m) => m.target),
        ["/app/config.yaml"],
      );
    }
  });

  test("bet mode: every agency gets a distinct, well-formed bet", () => {
    const { doc } = generateParsed(5, { mode: "bet" });
    const docs = new Set();
    for (let i = 1; i <= 5; i++) {
      const env = envOf(doc.services[`client${i}`]);
      assert.equal(env.CLI_MODE, "bet");
      assert.ok(env.NOMBRE && env.APELLIDO, "NOMBRE and APELLIDO");
      assert.match(env.DOCUMENTO, /^\d{8}$/);
      assert.match(env.NACIMIENTO, /^\d{4}-\d{2}-\d{2}$/);
      assert.ok(!Number.isNaN(Date.parse(env.NACIMIENTO)), "valid date");
      assert.match(env.NUMERO, /^\d+$/);
      docs.add(env.DOCUMENTO);
    }
    assert.equal(docs.size, 5, "distinct documents");
  });

  test("output outside the repository root uses absolute mount sources", () => {
    const dir = mkdtempSync(join(tmpdir(), "gc-"));
    try {
      const r = generate([join(dir, "c.yaml"), "1"]);
      assert.equal(r.status, 0, r.stderr);
      const doc = parse(readFileSync(join(dir, "c.yaml"), "utf8"));
      assert.deepEqual(
        mountsOf(doc.services.client1).map((m) => m.source),
        [join(ROOT, "client/config.yaml"), join(ROOT, ".data")],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("leading zeros are decimal, not octal", () => {
    const { doc } = generateParsed("010");
    assert.equal(Object.keys(doc.services).length, 11);
  });

  describe("server replicas (SERVER_REPLICAS / --replicas)", () => {
    const URL = /^postgres:\/\/([^:]+):([^@]+)@postgres:5432\/(.+)$/;

    for (const shell of ["sh", "bash"]) {
      test(`SERVER_REPLICAS=3, 5 agencies (run with ${shell}): postgres, server1..3 as \`server\`, agencies as before`, () => {
        const { doc, text } = generateParsed(5, { shell, replicas: "3" });
        assert.equal(doc.name, "tp0");
        assert.match(text.split("\n")[0], /clients: 5, mode: batch, server replicas: 3/);
        assert.deepEqual(Object.keys(doc.services), [
          "postgres",
          "server1",
          "server2",
          "server3",
          ...[1, 2, 3, 4, 5].map((i) => `client${i}`),
        ]);
        assert.deepEqual(doc.networks.testing_net.ipam.config, [{ subnet: "172.25.125.0/24" }]);

        const pg = doc.services.postgres;
        assert.equal(pg.container_name, "postgres");
        assert.equal(pg.image, "postgres:15");
        assert.deepEqual(pg.networks, ["testing_net"]);
        const pgEnv = envOf(pg);
        for (const key of ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"]) {
          assert.ok(pgEnv[key], `postgres sets ${key}`);
        }
        const check = pg.healthcheck.test;
        assert.equal(check[0], "CMD");
        assert.equal(check[1], "pg_isready");
        // Over TCP: the image's first-start initialisation listens on the Unix socket only.
        assert.equal(check[check.indexOf("-h") + 1], "127.0.0.1");
        assert.equal(check[check.indexOf("-U") + 1], pgEnv.POSTGRES_USER);
        assert.equal(check[check.indexOf("-d") + 1], pgEnv.POSTGRES_DB);
        assert.ok(pg.healthcheck.interval && pg.healthcheck.retries > 0, "interval and retries");

        for (const n of [1, 2, 3]) {
          const s = doc.services[`server${n}`];
          assert.equal(s.container_name, `server${n}`);
          assert.equal(s.image, "server:latest");
          assert.deepEqual(s.networks, { testing_net: { aliases: ["server"] } });
          assert.deepEqual(s.depends_on, { postgres: { condition: "service_healthy" } });
          const env = envOf(s);
          assert.deepEqual(Object.keys(env).sort(), ["AGENCIES", "DATABASE_URL"]);
          assert.equal(env.AGENCIES, "5");
          const m = URL.exec(env.DATABASE_URL);
          assert.ok(m, `DATABASE_URL points at postgres: ${env.DATABASE_URL}`);
          assert.deepEqual(
            [m[1], m[2], m[3]],
            [pgEnv.POSTGRES_USER, pgEnv.POSTGRES_PASSWORD, pgEnv.POSTGRES_DB],
          );
          assert.deepEqual(mountsOf(s), [
            { source: "./server/config.ini", target: "/app/config.ini", readOnly: true },
          ]);
        }

        for (let i = 1; i <= 5; i++) {
          const c = doc.services[`client${i}`];
          assert.equal(c.container_name, `client${i}`);
          assert.deepEqual(c.networks, ["testing_net"]);
          // No address: client/config.yaml's server:12345 resolves to every replica.
          assert.deepEqual(envOf(c), {
            CLI_ID: String(i),
            CLI_MODE: "batch",
            CLI_START_DELAY: "2s",
          });
          assert.deepEqual(c.depends_on, ["server1", "server2", "server3"]);
          assert.deepEqual(
            mountsOf(c).map((v) => v.target),
            ["/app/config.yaml", "/app/.data"],
          );
        }
        for (const s of Object.values(doc.services)) {
          for (const key of SHADOWING) assert.ok(!(key in envOf(s)), `${key} shadows a config key`);
        }
      });
    }

    test("--replicas 3 and --replicas=3 agree with SERVER_REPLICAS=3; the flag wins", () => {
      const viaEnv = generateParsed(2, { replicas: "3" }).text;
      for (const args of [["--replicas", "3"], ["--replicas=3"]]) {
        const r = generate([...args, COMPOSE_FILE, "2"], { replicas: "7" });
        assert.equal(r.status, 0, r.stderr);
        assert.equal(readFileSync(join(ROOT, COMPOSE_FILE), "utf8"), viaEnv, args.join(" "));
      }
    });

    test("SERVER_REPLICAS=1: one server on PostgreSQL, server1 as `server`", () => {
      const { doc } = generateParsed(2, { replicas: "1" });
      assert.deepEqual(Object.keys(doc.services), ["postgres", "server1", "client1", "client2"]);
      assert.deepEqual(doc.services.server1.networks, { testing_net: { aliases: ["server"] } });
      assert.match(envOf(doc.services.server1).DATABASE_URL, URL);
      assert.deepEqual(doc.services.client1.depends_on, ["server1"]);
    });

    test("unset, empty, 0 or 00: exactly the single-server file", () => {
      const plain = generateParsed(4).text;
      for (const replicas of ["", "0", "00"]) {
        assert.equal(generateParsed(4, { replicas }).text, plain, `SERVER_REPLICAS="${replicas}"`);
      }
      const r = generate(["--replicas", "0", COMPOSE_FILE, "4"], { replicas: "3" });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(readFileSync(join(ROOT, COMPOSE_FILE), "utf8"), plain, "--replicas 0");
      assert.ok(!plain.includes("postgres") && !plain.includes("DATABASE_URL"));
    });

    test("the /24 holds the replicas, postgres and the agencies", () => {
      // The largest file (a few seconds of sh): 9 replicas + postgres + 241 agencies.
      const { doc } = generateParsed(241, { replicas: "9" });
      assert.equal(Object.keys(doc.services).length, 9 + 1 + 241);
      assert.ok(Object.keys(doc.services).length <= 251, "two addresses stay free");
      for (const [replicas, max] of [
        ["1", 249],
        ["3", 247],
        ["9", 241],
      ]) {
        const r = generateRefused(["out.yaml", String(max + 1)], { replicas });
        assert.match(
          r.stderr,
          new RegExp(`at most ${max} with ${replicas} server replicas`),
          `${max + 1} agencies with ${replicas} replicas`,
        );
      }
    });

    describe("rejects a bad replica count: usage on stderr, exit 2, no file written", () => {
      for (const [name, replicas, args] of [
        ["not a number", "x", ["out.yaml", "2"]],
        ["negative", "-1", ["out.yaml", "2"]],
        ["decimal", "1.5", ["out.yaml", "2"]],
        ["with a space", " 3", ["out.yaml", "2"]],
        ["too many", "10", ["out.yaml", "2"]],
        ["too many, leading zeros", "0010", ["out.yaml", "2"]],
        ["flag without a value", "", ["--replicas"]],
        ["bad flag value", "", ["--replicas=three", "out.yaml", "2"]],
        ["bad flag value over a good SERVER_REPLICAS", "3", ["--replicas", "-2", "out.yaml", "2"]],
      ]) {
        test(name, () => {
          generateRefused(args, { replicas });
        });
      }
    });
  });

  const docker = dockerStatus();
  const skip = docker.ok
    ? false
    : IN_CI
      ? false
      : `Docker is not usable: ${docker.reason} (skipped; with CI=true this is a failure)`;
  describe("docker compose accepts the output", { skip }, () => {
    for (const [clients, mode, replicas] of [
      [0, "batch"],
      [5, "batch"],
      [3, "echo"],
      [3, "bet"],
      [5, "batch", "3"],
      [0, "batch", "1"],
      [2, "echo", "2"],
    ]) {
      const with_ = replicas ? `, ${replicas} server replica(s)` : "";
      test(`${clients} clients, ${mode} mode${with_}`, () => {
        assert.ok(docker.ok, `Docker is not usable: ${docker.reason}`);
        generateParsed(clients, { mode, replicas });
        const r = run("docker", ["compose", "-f", COMPOSE_FILE, "config", "-q"]);
        assert.equal(r.status, 0, r.stderr);
      });
    }
  });
});
