// Case 4 — graceful SIGTERM (course test_ej4): with a client looping (500 messages,
// 150 ms apart), `docker stop` of the client, of the server, of a server without
// clients, and `stop` of the whole project; every stopped container exits 0 (137 would
// mean Docker had to SIGKILL it after the grace period).

import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";
import {
  allExited,
  compose,
  dockerStop,
  dockerSuite,
  exitCode,
  exitsOf,
  failures,
  followLogs,
  generateCompose,
  setUpProject,
  show,
  whileUp,
} from "./lib/harness.mjs";

const GRACE = 20; // what the course's test gives `docker stop`

/** Waits until client1 has exchanged a few messages: the loop is running. */
async function waitForLoop(name) {
  const { messages } = await followLogs(
    name,
    (m) => m.filter((x) => x.source === "client1" && x.action === "receive_message").length >= 3,
  );
  assert.deepEqual(
    failures(messages),
    [],
    `no failure before the stop:\n${show(failures(messages))}`,
  );
}

/**
 * docker stop + checks: an exit line with code 0 and State.ExitCode 0. A container that
 * ignored SIGTERM would be SIGKILLed after the grace period and exit 137, so the exit
 * code alone tells a graceful stop; the time taken is only reported.
 */
async function stopAndCheck(t, name, container) {
  const started = Date.now();
  dockerStop(container, GRACE);
  t.diagnostic(`docker stop ${container} took ${(Date.now() - started) / 1000}s`);
  const { messages } = await followLogs(name, (m) => allExited(m, [container]));
  assert.equal(exitsOf(messages).get(container), 0, `${container} exits with code 0`);
  assert.equal(exitCode(container), 0, `${container}: State.ExitCode`);
}

dockerSuite("case 4: SIGTERM", () => {
  beforeEach(() => {
    setUpProject({
      clients: 1,
      mode: "echo",
      server: { loggingLevel: "DEBUG" },
      client: { loopAmount: 500, loopPeriod: "150ms" },
    });
  });

  test("docker stop client1 while it loops → client1 exits 0", async (t) => {
    await whileUp(async () => {
      await waitForLoop("case4-client-loop");
      await stopAndCheck(t, "case4-client-stop", "client1");
      assert.equal(exitCode("server"), null, "the server keeps running");
    });
  });

  test("docker stop server while a client loops → server exits 0", async (t) => {
    await whileUp(async () => {
      await waitForLoop("case4-server-loop");
      await stopAndCheck(t, "case4-server-stop", "server");
    });
  });

  test("docker stop server without clients → server exits 0", async (t) => {
    generateCompose(0, "echo");
    await whileUp(async () => {
      await followLogs("case4-lone-server-start", (m) => m.some((x) => x.source === "server"));
      await stopAndCheck(t, "case4-lone-server-stop", "server");
    });
  });

  test("docker compose stop of the whole project → every container exits 0", async (t) => {
    await whileUp(async () => {
      await waitForLoop("case4-all-loop");
      const started = Date.now();
      const r = compose(["stop", "-t", "10"], { timeout: 120_000 });
      assert.equal(r.status, 0, r.stderr);
      t.diagnostic(`docker compose stop took ${(Date.now() - started) / 1000}s`);
      const { messages } = await followLogs("case4-all-stop", (m) =>
        allExited(m, ["server", "client1"]),
      );
      const exits = exitsOf(messages);
      assert.equal(exits.get("client1"), 0, "client1 exits 0");
      assert.equal(exits.get("server"), 0, "server exits 0");
    });
  });
});
