// Case 1 — Part 1 echo clients (course test_ej1): every message echoed to the right
// client, every client exits 0, nothing logs `result: fail`, the server keeps running.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  allExited,
  clientNames,
  dockerSuite,
  exitCode,
  failures,
  followLogs,
  setUpProject,
  show,
  whileUp,
} from "./lib/harness.mjs";

async function echoRun(clients, amount) {
  setUpProject({ clients, mode: "echo", client: { loopAmount: amount, loopPeriod: "50ms" } });
  await whileUp(async () => {
    const names = clientNames(clients);
    const expectedAtServer = names.length * amount;
    const { messages } = await followLogs(
      `case1-echo-${clients}x${amount}`,
      (m) =>
        allExited(m, names) &&
        m.filter((x) => x.source === "server" && x.action === "receive_message").length >=
          expectedAtServer,
      { settled: (m) => allExited(m, names) },
    );
    assert.deepEqual(failures(messages), [], `no operation may fail:\n${show(failures(messages))}`);
    assert.ok(
      !messages.some((m) => m.action === "exit" && m.source === "server"),
      "the server must keep running when clients disconnect",
    );

    for (const [index, name] of names.entries()) {
      const id = index + 1;
      const received = messages.filter((m) => m.source === name && m.action === "receive_message");
      const expected = Array.from(
        { length: amount },
        (_, n) => `[CLIENT ${id}] Message N°${n + 1}`,
      );
      assert.deepEqual(
        received.map((m) => m.fields.msg),
        expected,
        `${name} must receive its own ${amount} echoes, in order`,
      );
      for (const m of received) {
        assert.equal(m.result, "success");
        assert.equal(m.fields.client_id, String(id), m.line);
      }
      const finished = messages.filter((m) => m.source === name && m.action === "loop_finished");
      assert.equal(finished.length, 1, `${name} logs loop_finished once`);
      assert.equal(finished[0].fields.client_id, String(id));
      assert.equal(exitCode(name), 0, `${name} exits 0`);
    }

    // The server saw every message (it logs each echoed line).
    const atServer = messages.filter(
      (m) => m.source === "server" && m.action === "receive_message",
    );
    for (const [index] of names.entries()) {
      for (let n = 1; n <= amount; n++) {
        const text = `[CLIENT ${index + 1}] Message N°${n}`;
        assert.ok(
          atServer.some((m) => m.fields.msg === text),
          `server logs receive_message for "${text}"`,
        );
      }
    }
    assert.equal(exitCode("server"), null, "the server is still running");
  });
}

dockerSuite("case 1: echo clients", () => {
  test("1 client, 1 message", () => echoRun(1, 1));
  test("1 client, 3 messages", () => echoRun(1, 3));
  test("2 clients, 1 message", () => echoRun(2, 1));
  test("5 clients, 5 messages", () => echoRun(5, 5));
});
