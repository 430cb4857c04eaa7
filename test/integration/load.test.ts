// Load: 500 hostile connections held at once — idle ones, slow ones (a HELLO byte by byte),
// unidentified floods of BATCH frames that never read, identified agencies that pipeline batches
// and held requests and never read, and echo clients that never read — while 5 agencies ingest.
// The agencies finish with the right bets and winners; the server cuts every hostile connection
// (and says so in its log); its memory stays bounded (peak RSS reported, generous bound asserted).
// Plus: held WINNERS_REQUESTs of connections that went away are not kept until the draw.
//
// Options: LOAD_SEED (default 31337), LOAD_RSS_LIMIT_MB (default 300).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readlinkSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { count, DONE, loggedWinnerCount, loggedWinners, logRe, waitCount } from "../../kit/logs.js";
import { freePort } from "../../kit/ports.js";
import { type ManagedProcess, reap } from "../../kit/proc.js";
import { cleanup, startAgency, startServerOn, tempDir } from "../../kit/programs.js";
import { describeFrame, RawClient } from "../../kit/raw-client.js";
import { tail } from "../../kit/report.js";
import { int, rng } from "../../kit/rng.js";
import { sampleRss } from "../../kit/stats.js";
import { compareStored } from "../../kit/stored.js";
import { guard, sleep } from "../../kit/wait.js";
import { Action } from "../../shared/src/actions.js";
import { MsgType } from "../../shared/src/protocol/frame.js";
import {
  BatchBuilder,
  encodeHello,
  encodeWinnersRequest,
} from "../../shared/src/protocol/messages.js";
import { generateDataset } from "../../tools/gen-data.js";

const SEED = Number(process.env.LOAD_SEED ?? 31337);
const RSS_LIMIT_MB = Number(process.env.LOAD_RSS_LIMIT_MB ?? 300);
const MIX = { idle: 200, slow: 150, flood: 80, neverRead: 60, echo: 10 };
const HOSTILE = MIX.idle + MIX.slow + MIX.flood + MIX.neverRead + MIX.echo; // 500
const REAL = 5;
const HELD_CONNS = Number(process.env.LOAD_HELD_CONNECTIONS ?? 6000);

const dirs: string[] = [];
after(() => dirs.forEach(cleanup));

/** Open TCP sockets of a process (its listener included), from /proc/<pid>/fd. */
function socketCount(pid: number): number {
  let n = 0;
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:")) n++;
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return -1;
  }
  return n;
}

/** The server's TCP connections as `ss` sees them: peer port, state, queued bytes. */
function serverConnections(pid: number): Array<{ peer: number; line: string }> {
  const r = spawnSync("ss", ["-tanp"], { encoding: "utf8" });
  if (r.status !== 0) return [];
  return r.stdout
    .split("\n")
    .filter((l) => l.includes(`pid=${pid},`) && !l.startsWith("LISTEN"))
    .map((l) => {
      const cols = l.trim().split(/\s+/);
      return { peer: Number(cols[4]?.split(":").pop()), line: cols.slice(0, 5).join(" ") };
    });
}

interface Hostile {
  kind: keyof typeof MIX;
  socket: Socket;
  /** ms from the start when it connected, and when it closed (-1: still open). */
  openedAt: number;
  closedAt: number;
  gotError: boolean;
  bytesIn: number;
}

function connect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ port, host: "127.0.0.1", noDelay: true });
    s.once("error", reject);
    s.once("connect", () => {
      s.off("error", reject);
      s.on("error", () => undefined);
      resolve(s);
    });
  });
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Writes with backpressure; false once the socket is gone (or after `deadline`). Always lets the
 * event loop turn, so that a client writing in a loop does not starve the others.
 */
async function send(s: Socket, buf: Buffer, deadline = Number.POSITIVE_INFINITY): Promise<boolean> {
  if (s.destroyed || !s.writable) return false;
  const ok = s.write(buf);
  await tick();
  if (ok) return !s.destroyed;
  const drained = await Promise.race([
    new Promise<boolean>((resolve) => {
      s.once("drain", () => resolve(true));
      s.once("close", () => resolve(false));
    }),
    sleep(Math.max(0, Math.min(deadline - Date.now(), 30_000))).then(() => false),
  ]);
  return drained && !s.destroyed;
}

function batch(r: () => number, seq: number, first: number, n: number): Buffer {
  const b = new BatchBuilder();
  for (let i = 0; i < n; i++) {
    const doc = String(int(r, 1, 99_999_999)).padStart(8, "0");
    b.addStrings(["Carga", "Pesada", doc, "1980-05-05", String(int(r, 0, 7573))]);
  }
  return b.build(MsgType.BATCH, seq, first);
}

describe("load", () => {
  test(`${HOSTILE} hostile connections while ${REAL} agencies ingest`, async () => {
    const t0 = Date.now();
    const r = rng(SEED);
    const dir = tempDir();
    dirs.push(dir);
    const bets = Array.from({ length: REAL }, () => int(r, 3000, 4000));
    const winners = Array.from({ length: REAL }, () => int(r, 0, 4));
    await generateDataset({ out: dir, agencies: REAL, bets, winners, seed: SEED });
    const files = bets.map((_, i) => join(dir, `agency-${i + 1}.csv`));
    // agencies REAL+1.. are identities for the never-reading agencies; the test finishes them
    const agenciesTotal = REAL + MIX.neverRead;
    const port = await freePort();
    const procs: ManagedProcess[] = [];
    const hostiles: Hostile[] = [];
    try {
      const server = await startServerOn(
        port,
        {
          AGENCIES: String(agenciesTotal),
          IDLE_TIMEOUT: "2s",
          HELLO_TIMEOUT: "2s",
          SERVER_LISTEN_BACKLOG: "1024",
          MAX_CONNECTIONS: "1024",
          LOGGING_LEVEL: "DEBUG",
        },
        dir,
      );
      procs.push(server);
      const pid = server.child.pid!;
      // sockets the server holds with no connection at all (its listener and a few internal ones)
      const baseSockets = socketCount(pid);
      const mem = sampleRss(pid, 100);
      let peakSockets = 0;
      const sockSampler = setInterval(() => {
        peakSockets = Math.max(peakSockets, socketCount(pid));
      }, 100);

      // 1. open every hostile connection first: all 500 are held at once
      const kinds: Array<keyof typeof MIX> = [];
      for (const [k, n] of Object.entries(MIX) as Array<[keyof typeof MIX, number]>) {
        for (let i = 0; i < n; i++) kinds.push(k);
      }
      for (let i = 0; i < kinds.length; i += 100) {
        const socks = await Promise.all(kinds.slice(i, i + 100).map(() => connect(port)));
        socks.forEach((socket, k) => {
          const h: Hostile = {
            kind: kinds[i + k]!,
            socket,
            openedAt: Date.now() - t0,
            closedAt: -1,
            gotError: false,
            bytesIn: 0,
          };
          socket.on("data", (d: Buffer) => {
            h.bytesIn += d.length;
            if (d.includes(Buffer.from([0xfa, 0x01, MsgType.ERROR]))) h.gotError = true;
          });
          socket.on("close", () => {
            h.closedAt = Date.now() - t0;
          });
          // never-readers do not read a byte
          if (h.kind === "flood" || h.kind === "neverRead" || h.kind === "echo") socket.pause();
          hostiles.push(h);
        });
      }
      const openAtOnce = hostiles.filter((h) => h.closedAt < 0).length;
      await waitCount(server, logRe(Action.ACCEPT_CONNECTIONS, "success"), HOSTILE, 20_000);
      const heldByServer = socketCount(pid) - baseSockets;

      // 2. the agencies start, and every hostile connection starts misbehaving
      const agencies = files.map((f, i) =>
        startAgency(
          i + 1,
          port,
          { CLI_DATA_FILE: f, CLI_BATCH_MAXAMOUNT: "50", CLI_LOG_LEVEL: "DEBUG" },
          dir,
        ),
      );
      procs.push(...agencies);
      let spare = REAL;
      const behaviours = hostiles.map(async (h, idx) => {
        const hr = rng(SEED + idx);
        switch (h.kind) {
          case "idle":
            return;
          case "slow": {
            // a HELLO (for an agency that does not exist), one byte every 300 ms
            const hello = encodeHello(1, { agency: 9999, secret: "" });
            for (let i = 0; i < hello.length && h.closedAt < 0; i++) {
              if (!(await send(h.socket, hello.subarray(i, i + 1)))) return;
              await sleep(300);
            }
            return;
          }
          case "flood": {
            // batches without HELLO, as fast as the server takes them, never reading: up to 1 MB
            const deadline = Date.now() + 20_000;
            for (let sent = 0; sent < 1 << 20 && h.closedAt < 0; ) {
              const b = batch(hr, sent, 0, 100);
              if (!(await send(h.socket, b, deadline))) return;
              sent += b.length;
            }
            return;
          }
          case "neverRead": {
            // an identified agency: 20 batches, then 100 held WINNERS_REQUESTs (more than the
            // 64 unanswered requests after which the server stops reading), never reading
            const agency = ++spare;
            const deadline = Date.now() + 20_000;
            if (!(await send(h.socket, encodeHello(1, { agency, secret: "" }), deadline))) return;
            for (let k = 0; k < 20; k++) {
              if (!(await send(h.socket, batch(hr, 2 + k, k * 50, 50), deadline))) return;
            }
            for (let k = 0; k < 100; k++) {
              if (!(await send(h.socket, encodeWinnersRequest(100 + k, true), deadline))) return;
            }
            return;
          }
          case "echo": {
            // text lines (the echo health check) sent until the server stops taking them
            const line = Buffer.from(`${"eco ".repeat(1000)}\n`);
            const deadline = Date.now() + 8_000;
            for (let sent = 0; sent < 24 << 20 && h.closedAt < 0 && Date.now() < deadline; ) {
              if (!(await send(h.socket, line, deadline))) return;
              sent += line.length;
            }
            return;
          }
        }
      });
      await guard(Promise.all(behaviours), 60_000, () => "hostile clients did not finish sending");

      // 3. the real agencies are done and wait for the draw: finish the never-readers' agencies
      // (each HELLO replaces the never-reading connection), which completes the draw
      await waitCount(server, DONE, REAL, 60_000);
      for (let a = REAL + 1; a <= agenciesTotal; a++) {
        const c = await RawClient.connect(port);
        const w = await c.hello(a);
        const ack = await c.done(w.committed);
        assert.equal(describeFrame(ack), "ACK", `DONE of agency ${a}`);
        await c.close();
      }
      const codes = await guard(
        Promise.all(agencies.map((a) => a.code)),
        60_000,
        () =>
          `agencies did not finish:\n${tail(server)}\n${agencies.map((a) => tail(a, 5)).join("\n--\n")}`,
      );
      assert.deepEqual(codes, [0, 0, 0, 0, 0], agencies.map((a) => tail(a, 5)).join("\n--\n"));
      const check = compareStored(join(dir, "bets.csv"), files, [1, 2, 3, 4, 5]);
      assert.ok(check.equal, `stored bets differ: missing ${check.missing}, extra ${check.extra}`);
      agencies.forEach((a, i) => {
        assert.equal(loggedWinnerCount(a), winners[i], `agency ${i + 1} cant_ganadores`);
        assert.deepEqual(loggedWinners(a), check.winners[i], `agency ${i + 1} winners`);
      });

      // 4. the server has let go of every hostile connection (only its listener is left)
      await guard(
        (async () => {
          while (socketCount(pid) > baseSockets) await sleep(100);
        })(),
        20_000,
        () => {
          const kindOf = new Map(hostiles.map((h) => [h.socket.localPort, h.kind]));
          const held = serverConnections(pid).map((c) => `${kindOf.get(c.peer) ?? "?"}: ${c.line}`);
          return (
            `the server still holds ${socketCount(pid) - baseSockets} connections, although IDLE_TIMEOUT ` +
            `is 2s (kind: state recv-q send-q local peer):\n${held.join("\n")}`
          );
        },
      );
      clearInterval(sockSampler);
      const rss = mem.stop();
      const lines = server.lines;
      const cut = (code: string) =>
        count(server, logRe(Action.CONNECTION, "\\w+", ` .*code: ${code}`));
      const figures = {
        idleTimeout: cut("IDLE_TIMEOUT"),
        notIdentified: cut("NOT_IDENTIFIED"),
        replaced: cut("REPLACED"),
        slowReader: cut("SLOW_READER"),
        closeLines: count(server, logRe(Action.CLOSE_CONNECTION, "success")),
      };
      // every slow HELLO is cut by the HELLO timeout, every flood by NOT_IDENTIFIED, every
      // never-reader by the agency taking its place; each closed connection has its log line
      assert.ok(figures.idleTimeout >= MIX.slow, JSON.stringify(figures));
      assert.ok(figures.notIdentified >= MIX.flood, JSON.stringify(figures));
      const neverReadCuts: Record<string, number> = {};
      for (let a = REAL + 1; a <= agenciesTotal; a++) {
        const l = lines.find(
          (x) => logRe(Action.CONNECTION).test(x) && x.includes(`who: agency ${a} |`),
        );
        const code = /code: (\w+)/.exec(l ?? "")?.[1] ?? "none";
        neverReadCuts[code] = (neverReadCuts[code] ?? 0) + 1;
      }
      // each never-reading agency was cut with a logged reason (normally REPLACED: it owes
      // held replies, so it is not idle; its agency connecting again takes over)
      assert.equal(
        neverReadCuts.none ?? 0,
        0,
        `every never-reading agency's connection ends with a log line: ${JSON.stringify(neverReadCuts)}`,
      );
      assert.ok(figures.closeLines >= HOSTILE + REAL, JSON.stringify(figures));
      for (const h of hostiles.filter((x) => x.kind === "slow")) {
        assert.ok(h.gotError || h.closedAt >= 0, "a slow HELLO got an ERROR or a close");
      }
      for (const h of hostiles.filter((x) => x.kind === "idle")) {
        assert.ok(h.closedAt >= 0, "the server closed every idle connection");
      }
      assert.equal(lines.filter((l) => / (ERROR|CRITICAL) /.test(l)).length, 0);
      assert.ok(server.alive);
      server.child.kill("SIGTERM");
      assert.equal(await server.code, 0, tail(server));
      const idleCut = hostiles
        .filter((h) => h.kind === "idle")
        .map((h) => h.closedAt - h.openedAt)
        .sort((a, b) => a - b);
      console.log(
        `load: ${HOSTILE} hostile connections open at once (client side ${openAtOnce}, ` +
          `server side ${heldByServer}; peak held by the server ${peakSockets - baseSockets}), ${REAL} agencies ` +
          `x ${bets.join("/")} bets ok; server peak RSS ${Math.round(rss.peakRssKb / 1024)} MB, ` +
          `VmHWM ${Math.round(rss.hwmKb / 1024)} MB (${rss.samples} samples); idle ones cut ` +
          `${idleCut[0]}..${idleCut.at(-1)} ms after connecting; cuts ${JSON.stringify(figures)}, never-readers ${JSON.stringify(neverReadCuts)}; ${Date.now() - t0} ms`,
      );
      assert.ok(
        rss.hwmKb / 1024 < RSS_LIMIT_MB,
        `server peak memory ${Math.round(rss.hwmKb / 1024)} MB ≥ ${RSS_LIMIT_MB} MB`,
      );
    } finally {
      for (const h of hostiles) h.socket.destroy();
      await reap(procs);
    }
  });

  test(`held WINNERS_REQUESTs of closed connections are released (${HELD_CONNS} connections x 60, 64 MB heap)`, async () => {
    const dir = tempDir();
    dirs.push(dir);
    const port = await freePort();
    const procs: ManagedProcess[] = [];
    try {
      // A small heap: requests that a closed connection left behind would fill it and kill the
      // server (V8 "heap out of memory"); released ones are garbage and cost nothing.
      const server = await startServerOn(
        port,
        {
          AGENCIES: "2",
          SERVER_LISTEN_BACKLOG: "1024",
          LOGGING_LEVEL: "INFO",
          NODE_OPTIONS: "--max-old-space-size=64",
        },
        dir,
      );
      procs.push(server);
      const mem = sampleRss(server.child.pid!, 100);
      const frames = [encodeHello(1, { agency: 2, secret: "" })];
      for (let k = 0; k < 60; k++) frames.push(encodeWinnersRequest(2 + k, true));
      const payload = Buffer.concat(frames);
      const t0 = Date.now();
      let n = 0;
      // each connection identifies, asks 60 times to be told the winners at the draw, and leaves
      for (; n < HELD_CONNS && server.alive; n += 50) {
        await guard(
          Promise.all(
            Array.from(
              { length: 50 },
              () =>
                new Promise<void>((resolve) => {
                  const s = createConnection({ port, host: "127.0.0.1" });
                  s.on("connect", () => s.write(payload));
                  s.on("data", () => s.destroy()); // WELCOME, or ERROR REPLACED
                  s.on("error", () => undefined);
                  s.on("close", () => resolve());
                }),
            ),
          ),
          30_000,
          () => `connections ${n}..${n + 50} did not complete:\n${tail(server)}`,
        );
      }
      const rss = mem.stop();
      console.log(
        `held requests: ${n} connections x 60 held WINNERS_REQUESTs in ${Date.now() - t0} ms, ` +
          `server peak RSS ${Math.round(rss.peakRssKb / 1024)} MB, alive: ${server.alive}`,
      );
      assert.ok(
        server.alive,
        `the server died after ${n} connections that each left 60 held WINNERS_REQUESTs: ` +
          "the requests of closed connections are kept until the draw (session.ts " +
          "onWinnersRequest keeps only the last cancelDraw; the other listeners stay in " +
          `Lottery.drawListeners)\n${server.stderr.slice(0, 600)}`,
      );
      // the draw still happens and answers
      for (const a of [1, 2]) {
        const c = await RawClient.connect(port);
        await c.hello(a);
        assert.equal(describeFrame(await c.done(0)), "ACK");
        if (a === 2) assert.deepEqual(await c.winners(true), []);
        await c.close();
      }
      server.child.kill("SIGTERM");
      assert.equal(await server.code, 0);
    } finally {
      await reap(procs);
    }
  });
});
