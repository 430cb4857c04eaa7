// The process edge with real processes: a crash (uncaught exception, unhandled rejection) is
// logged once and exits 1 after the ordered close; a second signal exits at once; a close past
// its deadline exits 1 naming what was open; an echo peer cannot hold the server's close open;
// a bets file that cannot be written answers STORAGE_FAILURE and acknowledges nothing that is
// not on disk.

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { actions, listeningRe, logRe } from "../../kit/logs.js";
import { bindLoopback } from "../../kit/ports.js";
import { stop } from "../../kit/proc.js";
import {
  cleanup,
  ROOT,
  type RunOptions,
  run,
  SERVER_JS,
  startAgency,
  startServer,
  tempDir,
} from "../../kit/programs.js";
import { batch, RawClient } from "../../kit/raw-client.js";
import { guard } from "../../kit/wait.js";
import { Action } from "../../shared/src/actions.js";
import { ErrorCode, isFault } from "../../shared/src/errors.js";
import { MsgType } from "../../shared/src/protocol/frame.js";
import { decodeAck, decodeFaultReply, encodeHello } from "../../shared/src/protocol/messages.js";

const INJECT: RunOptions = {
  nodeArgs: ["--import", pathToFileURL(join(ROOT, "dist/test/integration/lib/inject.js")).href],
};

/** Index of the first line matching `re` (asserting there is one). */
function indexOf(lines: string[], re: RegExp): number {
  const i = lines.findIndex((l) => re.test(l));
  assert.ok(i >= 0, `no line matches ${re}:\n${lines.join("\n")}`);
  return i;
}

/** The crash is said once, then the close runs in its order. */
function assertCrashThenClose(lines: string[], origin: string, error: string, closes: RegExp[]) {
  const crash = lines.filter((l) => l.includes(error));
  assert.equal(crash.length, 1, `logged once:\n${lines.join("\n")}`);
  assert.match(crash[0]!, logRe(Action.SHUTDOWN, "fail", ` \\| reason: ${origin}`));
  let at = lines.indexOf(crash[0]!);
  for (const re of closes) {
    const next = indexOf(lines, re);
    assert.ok(next > at, `${re} after the previous step:\n${lines.join("\n")}`);
    at = next;
  }
}

/**
 * A peer that sends `first`, reads the answer, and then neither sends nor closes: half-open is
 * allowed, so the server's FIN is not answered by ours.
 */
function heldPeer(port: number, first: Buffer | string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    s.once("error", reject);
    s.once("data", () => {
      s.off("error", reject);
      s.on("error", () => undefined);
      resolve(s);
    });
    s.write(first);
  });
}

/** An agency connection that said HELLO and holds on. */
const heldAgency = (port: number) => heldPeer(port, encodeHello(1, { agency: 1, secret: "" }));

describe("process edge", () => {
  const dirs: string[] = [];
  const peers: Socket[] = [];
  after(() => {
    for (const p of peers) p.destroy();
    dirs.forEach(cleanup);
  });
  const dir = () => {
    const d = tempDir();
    dirs.push(d);
    return d;
  };

  test("server: an uncaught exception is logged once, the close runs in order, exit 1", async () => {
    const server = await startServer({ AGENCIES: "1" }, dir(), INJECT);
    const agency = await RawClient.connect(server.port);
    peers.push(agency.socket);
    await agency.hello(1);
    server.child.kill("SIGUSR2");
    assert.equal(await server.code, 1, server.stderr);
    assertCrashThenClose(server.lines, "uncaughtException", "injected crash", [
      logRe(Action.CONNECTION, "success", " .*code: SHUTTING_DOWN"),
      logRe(Action.CLOSE_LISTENER, "success"),
      logRe(Action.CLOSE_FILE, "success", String.raw` \| path: \.\/bets\.csv$`),
      logRe(Action.CLOSE_FILE, "success", String.raw` \| path: \.\/bets\.csv\.state`),
      logRe(Action.SHUTDOWN, "success"),
    ]);
    assert.match(server.stderr, /^uncaughtException: Error: injected crash/m);
    await agency.closed;
    const err = agency.frames.find((f) => f.type === MsgType.ERROR);
    const reply = err && decodeFaultReply(err.payload);
    assert.ok(reply && !isFault(reply) && reply.code === ErrorCode.SHUTTING_DOWN);
  });

  test("agency: an unhandled rejection is logged once, the close runs, exit 1", async () => {
    const d = dir();
    const data = join(d, "a.csv");
    writeFileSync(data, "Ana,Pérez,30111222,1990-01-01,7574\n");
    // two agencies expected: agency 1 finishes and waits for a draw that cannot happen yet
    const server = await startServer({ AGENCIES: "2" }, d);
    const agency = startAgency(
      1,
      server.port,
      { CLI_DATA_FILE: data, CLI_LOG_LEVEL: "DEBUG" },
      d,
      INJECT,
    );
    await agency.waitFor(logRe(Action.NOTIFICAR_FIN, "success"));
    agency.child.kill("SIGHUP");
    assert.equal(await agency.code, 1, agency.stderr);
    assertCrashThenClose(agency.lines, "unhandledRejection", "injected rejection", [
      logRe(Action.CLOSE_CONNECTION, "success", String.raw` \| client_id: 1`),
      logRe(Action.SHUTDOWN, "success"),
    ]);
    assert.equal(await stop(server), 0);
  });

  test("a second signal during the close exits at once, non-zero", async () => {
    const server = await startServer({ AGENCIES: "1" }, dir());
    peers.push(await heldAgency(server.port));
    // Both signals are pending when the process resumes, so the second is handled in the same
    // turn as the first, while the close (which waits for the connection) is still running.
    server.child.kill("SIGSTOP");
    server.child.kill("SIGINT");
    server.child.kill("SIGTERM");
    server.child.kill("SIGCONT");
    const code = await server.code;
    assert.ok(code === 128 + 2 || code === 128 + 15, `exit ${code}`);
    const lines = server.lines.join("\n");
    assert.equal(actions(server.lines, Action.SIGNAL_RECEIVED).length, 2);
    assert.match(
      lines,
      logRe(
        Action.SHUTDOWN,
        "fail",
        String.raw` \| reason: second signal SIG(TERM|INT), exiting at once`,
      ),
    );
    assert.doesNotMatch(lines, logRe(Action.SHUTDOWN, "success"));
  });

  test("a close past its deadline exits 1 and says what was still open", async () => {
    // The held connection is destroyed 1 s after the close starts; the deadline comes first.
    const server = await startServer({ AGENCIES: "1", SHUTDOWN_DEADLINE: "200ms" }, dir());
    peers.push(await heldAgency(server.port));
    assert.equal(await stop(server), 1);
    const line = server.lines.find((l) => logRe(Action.SHUTDOWN, "fail").test(l));
    assert.match(
      line ?? "",
      /reason: close did not finish within 200ms \| open: listener and 1 connection$/,
    );
    assert.doesNotMatch(server.lines.join("\n"), logRe(Action.SHUTDOWN, "success"));
  });

  test("an inherited listening socket (SERVER_LISTEN_FD): a peer that connected before the server started is served", async () => {
    const bound = await bindLoopback(16);
    assert.ok(bound, "a listening socket's descriptor");
    const server = run(SERVER_JS, { SERVER_LISTEN_FD: "3", LOGGING_LEVEL: "DEBUG" }, dir(), {
      passFds: [bound.fd],
    });
    bound.close(); // before this process's event loop could accept anything on it
    // connects and talks while the server is still starting (node alone takes tens of ms): the
    // connection waits in the socket's backlog
    const peer = connect({ host: "127.0.0.1", port: bound.port });
    peers.push(peer);
    peer.write("hola antes\n");
    const echoed = await guard(
      new Promise<string>((resolve) => {
        let text = "";
        peer.on("data", (chunk) => {
          text += String(chunk);
          if (text.endsWith("\n")) resolve(text);
        });
        peer.on("close", () => resolve(text));
      }),
      30_000,
      () => `no echo on the inherited socket:\n${server.lines.join("\n")}`,
    );
    assert.equal(echoed, "hola antes\n");
    await server.waitFor(listeningRe);
    assert.match(server.lines.join("\n"), new RegExp(`port: ${bound.port}$`, "m"));
    assert.equal(await stop(server), 0, server.lines.join("\n"));
  });

  test("an echo peer that never closes cannot hold the server's close open: exit 0", async () => {
    const server = await startServer({}, dir());
    peers.push(await heldPeer(server.port, "hola\n"));
    assert.equal(await stop(server), 0, server.lines.join("\n"));
    assert.match(server.lines.join("\n"), logRe(Action.CLOSE_LISTENER, "success"));
  });

  test("a bets file that cannot grow: STORAGE_FAILURE, nothing acknowledged that is not on disk", async () => {
    const d = dir();
    // RLIMIT_FSIZE holds for root too: writes past 4 KiB fail (EFBIG), as on a full disk.
    const server = await startServer({ AGENCIES: "1" }, d, {
      wrap: ["prlimit", "--fsize=4096", "--"],
    });
    const c = await RawClient.connect(server.port);
    peers.push(c.socket);
    await c.hello(1);
    const rows = (k: number) =>
      Array.from({ length: 20 }, (_, i) => [
        "Ana",
        "Pérez",
        `${30_000_000 + k * 20 + i}`,
        "1990-01-01",
        "1",
      ]);
    let acked = 0;
    let failure: number | null = null;
    for (let k = 0; k < 50 && failure === null; k++) {
      const seq = c.nextSeq();
      const [reply] = await c.request(batch(seq, acked, rows(k)));
      if (reply!.type === MsgType.ACK) {
        const pos = decodeAck(reply!.payload);
        assert.equal(pos, acked + 20);
        acked += 20;
      } else {
        assert.equal(reply!.type, MsgType.ERROR);
        assert.equal(reply!.seq, seq);
        const r = decodeFaultReply(reply!.payload);
        assert.ok(!isFault(r));
        failure = r.code;
      }
    }
    assert.equal(failure, ErrorCode.STORAGE_FAILURE);
    assert.ok(acked > 0, "the batches before the limit were stored and acknowledged");
    // the file store cannot go on: the server closes and exits 1
    assert.equal(await server.code, 1);
    assert.match(server.lines.join("\n"), logRe(Action.STORAGE, "fail"));
    // every acknowledged row is on disk, whole, in order (the rest is a torn tail at most)
    const text = readFileSync(join(d, "bets.csv"), "utf8");
    const csv = (k: number) =>
      rows(k)
        .map((r) => `1,${r.join(",")}\r\n`)
        .join("");
    const expected = Array.from({ length: acked / 20 }, (_, k) => csv(k)).join("");
    assert.ok(text.startsWith(expected), "acknowledged rows are on disk");
    const tail = text.slice(expected.length);
    assert.ok(csv(acked / 20).startsWith(tail) && tail !== csv(acked / 20), "then a torn tail");
    // A restart keeps the whole rows on disk (the failed batch's among them, never acknowledged)
    // and tells the agency that position, so it resends the rest: nothing lost, nothing twice.
    const again = await startServer({ AGENCIES: "1" }, d);
    const c2 = await RawClient.connect(again.port);
    peers.push(c2.socket);
    const welcome = await c2.hello(1);
    assert.equal(welcome.committed, acked + tail.split("\r\n").length - 1);
    assert.equal(await stop(again), 0);
  });
});
