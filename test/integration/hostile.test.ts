// Bad input never crashes the server nor disturbs agencies: each hostile peer gets an error code
// or a closed connection and one log line, and a normal lottery still completes afterwards.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { actions } from "../../kit/logs.js";
import { stop } from "../../kit/proc.js";
import { cleanup, type ServerProc, startAgency, startServer, tempDir } from "../../kit/programs.js";
import { batch, exchange } from "../../kit/raw-client.js";
import { Action } from "../../shared/src/actions.js";
import { ErrorCode, errorName } from "../../shared/src/errors.js";
import {
  encodeFrame,
  HEADER_SIZE,
  MAGIC,
  MsgType,
  VERSION,
} from "../../shared/src/protocol/frame.js";
import {
  decodeFaultReply,
  encodeHello,
  encodeWinnersRequest,
} from "../../shared/src/protocol/messages.js";

function errorCodeOf(frames: { type: number; payload: Buffer }[]): string {
  const e = frames.find((f) => f.type === MsgType.ERROR || f.type === MsgType.REJECT);
  assert.ok(e, "expected an ERROR or REJECT frame");
  const r = decodeFaultReply(e.payload);
  assert.ok(!("kind" in r));
  return errorName(r.code);
}

function header(type: number, seq: number, len: number): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  h[0] = MAGIC;
  h[1] = VERSION;
  h[2] = type;
  h.writeUInt32BE(seq, 4);
  h.writeUInt32BE(len, 8);
  return h;
}

describe("hostile input", () => {
  let server: ServerProc;
  let dir: string;
  before(async () => {
    dir = tempDir();
    server = await startServer(
      { AGENCIES: "2", HELLO_TIMEOUT: "1s", IDLE_TIMEOUT: "2s", SERVER_LISTEN_BACKLOG: "512" },
      dir,
    );
  });
  after(async () => {
    await stop(server);
    cleanup(dir);
  });

  test("random bytes that are not text: closed, one log line", async () => {
    const junk = Buffer.concat([
      Buffer.from([0xff, 0xfe, 0x00, 0x80]),
      randomBytes(2000),
      Buffer.from("\n"),
    ]);
    const r = await exchange(server.port, [junk]);
    assert.ok(r.closedByServer);
    await server.waitFor(/receive_message \| result: fail .*invalid UTF-8/);
  });

  test("magic byte then garbage: ERROR UNSUPPORTED_VERSION or UNKNOWN_TYPE", async () => {
    const r1 = await exchange(server.port, [Buffer.from([MAGIC, 9, 1, 0])]);
    assert.equal(errorCodeOf(r1.frames), "UNSUPPORTED_VERSION");
    const r2 = await exchange(server.port, [Buffer.from([MAGIC, VERSION, 0x77, 0])]);
    assert.equal(errorCodeOf(r2.frames), "UNKNOWN_TYPE");
    assert.ok(r1.closedByServer && r2.closedByServer);
  });

  test("a length header claiming gigabytes is refused before any payload", async () => {
    const r = await exchange(server.port, [header(MsgType.BATCH, 1, 0xfffffff0)]);
    assert.equal(errorCodeOf(r.frames), "FRAME_TOO_LARGE");
    await server.waitFor(/code: FRAME_TOO_LARGE/);
  });

  test("a frame cut off by a closed socket is logged as truncated", async () => {
    const hello = encodeHello(1, { agency: 1, secret: "" });
    const r = await exchange(server.port, [hello.subarray(0, 7)], { end: true });
    assert.ok(r.closedByServer);
    await server.waitFor(/code: TRUNCATED_FRAME/);
  });

  test("requests before HELLO and unknown agencies are refused", async () => {
    const r1 = await exchange(server.port, [encodeWinnersRequest(1, false)]);
    assert.equal(errorCodeOf(r1.frames), "NOT_IDENTIFIED");
    const r2 = await exchange(server.port, [encodeHello(1, { agency: 99, secret: "" })]);
    assert.equal(errorCodeOf(r2.frames), "UNKNOWN_AGENCY");
    const r3 = await exchange(server.port, [encodeFrame(MsgType.ACK, 1, Buffer.alloc(4))]);
    assert.equal(errorCodeOf(r3.frames), "UNKNOWN_TYPE");
  });

  test("a batch with 2023-02-30 or number abc is rejected whole; nothing of it is stored", async () => {
    const good = ["Ana", "Pérez", "30111222", "1990-01-01", "10"];
    const frames = [
      encodeHello(1, { agency: 2, secret: "" }),
      batch(2, 0, [good, ["Luis", "Gómez", "30111223", "2023-02-30", "11"]]),
      batch(3, 0, [good, ["Eva", "Ruiz", "30111224", "1991-01-01", "abc"]]),
    ];
    const r = await exchange(server.port, frames, { waitMs: 1500 });
    const rejects = r.frames
      .filter((f) => f.type === MsgType.REJECT)
      .map((f) => decodeFaultReply(f.payload));
    assert.deepEqual(
      rejects.map((x) => ("kind" in x ? "fault" : [errorName(x.code), x.index])),
      [
        [errorName(ErrorCode.INVALID_DATE), 1],
        [errorName(ErrorCode.INVALID_NUMBER), 1],
      ],
    );
    const fails = actions(server.lines, Action.APUESTA_RECIBIDA).filter((m) => m.result === "fail");
    assert.deepEqual(
      fails.map((m) => m.cantidad),
      ["2", "2"],
    );
    assert.equal(readFileSync(join(dir, "bets.csv"), "utf8"), "", "nothing stored");
  });

  test("hundreds of idle connections are cut by the hello timeout", async () => {
    const socks: Socket[] = [];
    const closed: Promise<void>[] = [];
    for (let i = 0; i < 300; i++) {
      const s = connect({ host: "127.0.0.1", port: server.port });
      s.on("error", () => undefined);
      s.resume(); // read (and discard) the ERROR frame so the close is seen
      closed.push(new Promise((res) => s.on("close", () => res())));
      socks.push(s);
    }
    // half of them start a frame and stall: they are cut too
    for (const s of socks.slice(0, 150)) s.write(Buffer.from([MAGIC, VERSION, MsgType.HELLO]));
    await Promise.all(closed);
    await server.waitFor(/reason: no data in time/);
    await server.waitFor(/reason: no HELLO in time/);
  });

  test("a peer trickling a frame byte by byte is cut by the read timeout", async () => {
    const s = connect({ host: "127.0.0.1", port: server.port });
    s.on("error", () => undefined);
    s.resume();
    await new Promise((res) => s.on("connect", res));
    s.write(encodeHello(1, { agency: 1, secret: "" }));
    const frame = batch(2, 0, [["Ana", "Pérez", "30111222", "1990-01-01", "10"]]);
    let i = 0;
    const drip = setInterval(() => {
      if (i < frame.length && !s.destroyed) s.write(frame.subarray(i, ++i));
    }, 300); // every byte resets the idle timer (2 s); the frame never completes in time
    const closed = new Promise<void>((res) => s.on("close", () => res()));
    await server.waitFor(/code: IDLE_TIMEOUT \| reason: frame not completed in time/);
    await closed;
    clearInterval(drip);
  });

  test("a client that never reads its replies is cut off as a slow reader", async () => {
    const s = connect({ host: "127.0.0.1", port: server.port });
    s.on("error", () => undefined);
    await new Promise((res) => s.on("connect", res));
    s.pause(); // never read
    s.write(encodeHello(1, { agency: 1, secret: "" }));
    // ~13 MB of requests whose replies (~12 MB) exceed what the kernel buffers on loopback
    const req = encodeWinnersRequest(0, false);
    const many = Buffer.allocUnsafe(req.length * 1_000_000);
    for (let off = 0; off < many.length; off += req.length) req.copy(many, off);
    s.write(many);
    // A paused socket never sees the server's close: the server's log line is the evidence.
    // SLOW_READER when its replies are stuck in our socket; IDLE_TIMEOUT if the kernel absorbed them.
    const cut = await server.waitFor(/who: agency 1 \| code: (SLOW_READER|IDLE_TIMEOUT)/);
    s.destroy();
    const rss = Number(
      /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${server.child.pid}/status`, "utf8"))![1],
    );
    assert.ok(rss < 200 * 1024, `server peak RSS ${rss} kB stays bounded (${cut})`);
  });

  test("after all that, a normal lottery completes", async () => {
    const rows = (n: number, winners: number) =>
      Array.from(
        { length: n },
        (_, i) =>
          `Nombre ${i},Apellido,${String(i).padStart(8, "0")},2000-01-01,${i < winners ? 7574 : i}\n`,
      ).join("");
    writeFileSync(join(dir, "a1.csv"), rows(500, 3));
    writeFileSync(join(dir, "a2.csv"), rows(300, 1));
    const a1 = startAgency(
      1,
      server.port,
      { CLI_DATA_FILE: join(dir, "a1.csv"), CLI_BATCH_MAXAMOUNT: "64" },
      dir,
    );
    const a2 = startAgency(
      2,
      server.port,
      { CLI_DATA_FILE: join(dir, "a2.csv"), CLI_BATCH_MAXAMOUNT: "64" },
      dir,
    );
    assert.deepEqual(await Promise.all([a1.code, a2.code]), [0, 0], a1.stderr + a2.stderr);
    assert.equal(actions(a1.lines, Action.CONSULTA_GANADORES)[0]?.cant_ganadores, "3");
    assert.equal(actions(a2.lines, Action.CONSULTA_GANADORES)[0]?.cant_ganadores, "1");
    const stored = readFileSync(join(dir, "bets.csv"), "utf8").split("\r\n").filter(Boolean);
    assert.equal(stored.length, 800);
    assert.equal(server.child.exitCode, null, "server still running");
    assert.equal(actions(server.lines, Action.SORTEO).length, 1);
  });
});
