// Case 3 — validar-echo-server.sh (course test_ej3): `success` against our server
// (0 clients) and the server logs the message; `fail` against a server that answers
// something else, one that never answers (without hanging), and no server at all.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  check,
  dockerSuite,
  failures,
  followLogs,
  generateCompose,
  MOCK_COMPOSE_FILE,
  run,
  show,
  whileUp,
  writeServerConfig,
} from "./lib/harness.mjs";

const SUCCESS = "action: test_echo_server | result: success";
const FAIL = "action: test_echo_server | result: fail";

/** Runs the script like the course does (`sh validar-echo-server.sh`). */
function validate() {
  const started = Date.now();
  const r = run("sh", ["validar-echo-server.sh"], { timeout: 120_000 });
  const lines = r.stdout.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `exactly one output line, got:\n${r.stdout}`);
  assert.ok([SUCCESS, FAIL].includes(lines[0]), `unexpected output: ${lines[0]}`);
  assert.equal(r.status, lines[0] === SUCCESS ? 0 : 1, "exit status follows the result");
  return { line: lines[0], seconds: (Date.now() - started) / 1000 };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function mock(profile, action) {
  const args = ["compose", "-f", MOCK_COMPOSE_FILE, "--profile", profile];
  if (action === "up") check("docker", [...args, "up", "-d"]);
  else run("docker", [...args, "down", "-t", "1"]);
}

async function waitForMockListening() {
  for (let i = 0; i < 100; i++) {
    if (run("docker", ["logs", "server"]).stdout.includes("listening")) return;
    await sleep(200);
  }
  throw new Error("mock server did not start");
}

/** Starts the mock server of `profile`, runs `assertions()` once it listens, then stops the mock. */
async function againstMock(profile, assertions) {
  mock(profile, "up");
  try {
    await waitForMockListening();
    assertions();
  } finally {
    mock(profile, "down");
  }
}

dockerSuite("case 3: validar-echo-server.sh", () => {
  test("success against our server with 0 clients; the server logs the message", async () => {
    writeServerConfig({ loggingLevel: "DEBUG" });
    generateCompose(0);
    await whileUp(async () => {
      // Wait for the server's first log line (its config), so that the check does not
      // race the server's start-up; then one run must succeed. A second attempt is
      // allowed only for a server that was still binding its port.
      await followLogs("case3-server-start", (m) => m.some((x) => x.source === "server"));
      let result = validate();
      if (result.line !== SUCCESS) {
        await sleep(2000);
        result = validate();
      }
      assert.equal(result.line, SUCCESS);

      const { messages } = await followLogs("case3-our-server", (m) =>
        m.some(
          (x) =>
            x.source === "server" &&
            x.action === "receive_message" &&
            x.result === "success" &&
            x.fields.msg?.startsWith("tp0 echo check"),
        ),
      );
      assert.deepEqual(failures(messages), [], show(failures(messages)));
    });
  });

  test("success against a plain echo server (mock)", () =>
    againstMock("echo", () => assert.equal(validate().line, SUCCESS)));

  test("fail against a server that answers something else (mock)", () =>
    againstMock("garble", () => assert.equal(validate().line, FAIL)));

  test("fail, without hanging, against a server that never answers (mock)", () =>
    againstMock("mute", () => {
      const r = validate();
      assert.equal(r.line, FAIL);
      assert.ok(r.seconds < 60, `bounded wait (took ${r.seconds}s)`);
    }));

  test("fail when there is no server and no network", () => {
    assert.equal(validate().line, FAIL);
  });
});
