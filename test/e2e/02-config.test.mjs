// Case 2 — configuration by volume (course test_ej2): different client and server
// configs, same images; the logged `action: config` values follow the mounted files.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  dockerSuite,
  exitCode,
  followClients,
  run,
  setUpProject,
  whileUp,
} from "./lib/harness.mjs";

const CLIENT_A = { loopAmount: 5, loopPeriod: "100ms", logLevel: "DEBUG" };
const CLIENT_B = { loopAmount: 2, loopPeriod: "250ms", logLevel: "INFO" };
const SERVER_A = { listenBacklog: 8, loggingLevel: "DEBUG" };
const SERVER_B = { listenBacklog: 16, loggingLevel: "INFO" };
// Not in the course's tests: another port in both files (the address follows too).
const SERVER_C = { port: 23456, loggingLevel: "DEBUG" };
const CLIENT_C = { address: "server:23456", loopAmount: 2, loopPeriod: "10ms" };

const LEVEL = /^\S+ \S+ (\w+)\s/; // `YYYY-MM-DD HH:MM:SS LEVEL    …` after the prefix

/** Log level of a raw compose log line (`server    | 2026-… DEBUG    action: …`). */
function levelOf(line) {
  const bar = line.indexOf("|");
  const m = LEVEL.exec(line.slice(bar + 1).trimStart());
  return m ? m[1] : null;
}

const imageIds = () =>
  run("docker", ["image", "inspect", "-f", "{{.Id}}", "server:latest", "client:latest"]).stdout;

async function configRun(name, { client = {}, server = {} }) {
  setUpProject({ clients: 1, mode: "echo", server, client });
  await whileUp(async () => {
    const serverLogsConfig = (server.loggingLevel ?? "INFO") === "DEBUG";
    const { messages, lines } = await followClients(
      `case2-${name}`,
      ["client1"],
      // The server's start-up lines (config included) precede, in its own ordered
      // stream, its echo of the client's messages: once every echo is in, they all are.
      (m) =>
        m.filter((x) => x.source === "server" && x.action === "receive_message").length >=
        (client.loopAmount ?? 3),
    );

    const clientConfig = messages.filter((m) => m.source === "client1" && m.action === "config");
    assert.equal(clientConfig.length, 1, "client1 logs its config once");
    const c = clientConfig[0].fields;
    assert.equal(c.client_id, "1");
    assert.equal(c.server_address, client.address ?? "server:12345");
    assert.equal(c.loop_amount, String(client.loopAmount ?? 3));
    assert.equal(c.loop_period, client.loopPeriod ?? "50ms");
    assert.equal(c.log_level, client.logLevel ?? "INFO");

    const serverConfig = messages.filter((m) => m.source === "server" && m.action === "config");
    if (serverLogsConfig) assert.ok(serverConfig.length > 0, "server logs its config (DEBUG)");
    // The course's test_ej2 reads these keys from EVERY server `action: config` line, so
    // each such line must carry them (a line without them is a KeyError there).
    for (const m of serverConfig) {
      const expected = {
        port: String(server.port ?? 12345),
        listen_backlog: String(server.listenBacklog ?? 5),
        logging_level: server.loggingLevel ?? "INFO",
      };
      for (const [key, value] of Object.entries(expected)) {
        assert.equal(m.fields[key], value, `${key} in every server config line: ${m.line}`);
      }
    }

    // The levels in the files are honoured: nothing below INFO when INFO is configured.
    const serverLevels = lines.filter((l) => l.startsWith("server ")).map(levelOf);
    const clientLevels = lines.filter((l) => l.startsWith("client1 ")).map(levelOf);
    if ((server.loggingLevel ?? "INFO") === "INFO") {
      assert.ok(!serverLevels.includes("DEBUG"), "server at INFO logs no DEBUG line");
    }
    if ((client.logLevel ?? "INFO") === "INFO") {
      assert.ok(!clientLevels.includes("DEBUG"), "client at INFO logs no DEBUG line");
    }

    const echoes = messages.filter((m) => m.source === "client1" && m.action === "receive_message");
    assert.equal(echoes.length, client.loopAmount ?? 3, "loop.amount from the file is used");
    assert.equal(exitCode("client1"), 0);
  });
}

let ids;
dockerSuite(
  "case 2: configuration by volume, no rebuild",
  () => {
    test("client config A (5 × 100ms, DEBUG)", () => configRun("client-A", { client: CLIENT_A }));
    test("client config B (2 × 250ms, INFO)", () => configRun("client-B", { client: CLIENT_B }));
    test("server config A (backlog 8, DEBUG)", () => configRun("server-A", { server: SERVER_A }));
    test("server config B (backlog 16, INFO)", () => configRun("server-B", { server: SERVER_B }));
    test("another port in both files (23456)", () =>
      configRun("port-C", { server: SERVER_C, client: CLIENT_C }));
    test("the images were not rebuilt", () => assert.equal(imageIds(), ids));
  },
  {
    setUp: () => {
      ids = imageIds();
    },
  },
);
