// generar-compose.sh on its own: arguments, generated structure, modes, and (when
// Docker is usable) that `docker compose config` accepts the output. No images needed.

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

function generate(args, { shell = "sh", mode, cwd = ROOT } = {}) {
  return run(shell, [SCRIPT, ...args], { cwd, env: { CLIENT_MODE: mode ?? "" } });
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
        const dir = mkdtempSync(join(tmpdir(), "gc-"));
        try {
          const r = generate(args, { cwd: dir });
          assert.equal(r.status, 2, `exit status (stderr: ${r.stderr})`);
          assert.match(r.stderr, /usage: generar-compose\.sh/);
          assert.equal(r.stdout, "");
          assert.deepEqual(readdirSync(dir), [], "no file may be written");
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }

    test("invalid CLIENT_MODE", () => {
      const dir = mkdtempSync(join(tmpdir(), "gc-"));
      try {
        const r = generate(["out.yaml", "2"], { cwd: dir, mode: "lottery" });
        assert.equal(r.status, 2);
        assert.match(r.stderr, /usage:/);
        assert.deepEqual(readdirSync(dir), []);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
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

  const docker = dockerStatus();
  const skip = docker.ok
    ? false
    : IN_CI
      ? false
      : `Docker is not usable: ${docker.reason} (skipped; with CI=true this is a failure)`;
  describe("docker compose accepts the output", { skip }, () => {
    for (const [clients, mode] of [
      [0, "batch"],
      [5, "batch"],
      [3, "echo"],
      [3, "bet"],
    ]) {
      test(`${clients} clients, ${mode} mode`, () => {
        assert.ok(docker.ok, `Docker is not usable: ${docker.reason}`);
        generateParsed(clients, { mode });
        const r = run("docker", ["compose", "-f", COMPOSE_FILE, "config", "-q"]);
        assert.equal(r.status, 0, r.stderr);
      });
    }
  });
});
