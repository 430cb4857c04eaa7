// Live fuzzing: thousands of random and mutated frames (mutations of valid HELLO, BET, BATCH,
// DONE and WINNERS_REQUEST frames) sent to a running server over many connections, in random
// chunkings. For every connection: the server answers only well-formed frames, in request order;
// a framing violation is answered by an ERROR frame or a close; nothing hangs (each wait is
// bounded). At the end the server is alive and serves a normal agency, and exits 0 on SIGTERM.
//
// Longer run:  FUZZ_CASES=200000 node --test dist/test/integration/fuzz-live.test.js
// Replay:      FUZZ_SEED=<seed> (default 4242), FUZZ_CONCURRENCY (default 16)

import assert from "node:assert/strict";
import { createConnection } from "node:net";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { loggedWinnerCount } from "../../kit/logs.js";
import { freePort } from "../../kit/ports.js";
import { type ManagedProcess, reap } from "../../kit/proc.js";
import { cleanup, startAgency, startServerOn, tempDir } from "../../kit/programs.js";
import { RawClient } from "../../kit/raw-client.js";
import { tail } from "../../kit/report.js";
import { int, pick, rng } from "../../kit/rng.js";
import { sampleRss } from "../../kit/stats.js";
import { guard } from "../../kit/wait.js";
import { errorName, isFault } from "../../shared/src/errors.js";
import { FrameDecoder } from "../../shared/src/protocol/decoder.js";
import * as wire from "../../shared/src/protocol/frame.js";
import * as msg from "../../shared/src/protocol/messages.js";
import { generateDataset } from "../../tools/gen-data.js";

const CASES = Number(process.env.FUZZ_CASES ?? 10000);
const SEED = Number(process.env.FUZZ_SEED ?? 4242);
const CONCURRENCY = Number(process.env.FUZZ_CONCURRENCY ?? 16);
/** Agency 1 is the real one at the end (protected by a secret); 2 and 3 are open to the fuzzer. */
const SECRET = "s3cr3t-of-agency-1";
const CLIENT_TYPES = new Set<number>([
  wire.MsgType.HELLO,
  wire.MsgType.BET,
  wire.MsgType.BATCH,
  wire.MsgType.DONE,
  wire.MsgType.WINNERS_REQUEST,
]);
const SERVER_TYPES = new Set<number>([
  wire.MsgType.ACK,
  wire.MsgType.WELCOME,
  wire.MsgType.REJECT,
  wire.MsgType.WINNERS,
  wire.MsgType.NOT_READY,
  wire.MsgType.ERROR,
]);

const dirs: string[] = [];
after(() => dirs.forEach(cleanup));

// ------------------------------------------------------------------------------ frame generators

const NAMES = ["Ana", "José", "Fornerón", "Álvarez", "Ñandú", 'O"Brien', "a,b", "x|y:z", "Lí\nnea"];

function betFields(r: () => number, canBeBad: boolean): string[] {
  const y = int(r, 1900, 2005);
  const m = int(r, 1, 12);
  const d = int(r, 1, 28);
  const fields = [
    pick(r, NAMES),
    pick(r, NAMES),
    String(int(r, 0, 9_999_999_999))
      .padStart(int(r, 1, 10), "0")
      .slice(0, 10),
    `${y}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`,
    String(r() < 0.1 ? 7574 : int(r, 0, 9999)),
  ];
  if (canBeBad && r() < 0.04) {
    // one invalid field: the whole batch must be refused (REJECT)
    const bad: Array<[number, string]> = [
      [0, ""],
      [2, "12ab"],
      [2, "12345678901"],
      [3, "2023-02-30"],
      [3, "2999-01-01"],
      [3, "1990/01/01"],
      [4, "-1"],
      [4, "123456789"],
      [4, "x"],
    ];
    const [f, v] = pick(r, bad);
    fields[f] = v;
  }
  return fields;
}

/**
 * Committed position per agency as last acknowledged by the server (ACK values), so that some
 * generated batches start where the server expects them and get stored. Depends on the order in
 * which connections complete, the only part of a run that the seed does not fix.
 */
const committedHint = new Map<number, number>();

function batchFrame(
  r: () => number,
  seq: number,
  type: 2 | 3,
  first: number,
  canBeBad = true,
): { frame: Buffer; count: number } {
  const b = new msg.BatchBuilder();
  const n = type === wire.MsgType.BET ? 1 : int(r, 1, r() < 0.1 ? 200 : 12);
  for (let i = 0; i < n; i++) if (!b.addStrings(betFields(r, canBeBad))) break;
  return { frame: b.build(type, seq, first), count: b.count };
}

function someFirst(r: () => number, agency: number): number {
  const x = r();
  if (x < 0.5) return committedHint.get(agency) ?? 0;
  return x < 0.75 ? int(r, 0, 50) : int(r, 0, 0xffffffff);
}

function validFrame(r: () => number, seq: number, agency: number): Buffer {
  const x = r();
  if (x < 0.15) {
    const agency = pick(r, [2, 3, 2, 3, 1, 0, 4, 0xffffffff]);
    const secret = agency === 1 ? pick(r, ["", "wrong", SECRET.slice(1)]) : r() < 0.8 ? "" : "x";
    return msg.encodeHello(seq, { agency, secret });
  }
  if (x < 0.5) return batchFrame(r, seq, wire.MsgType.BATCH, someFirst(r, agency)).frame;
  if (x < 0.6) return batchFrame(r, seq, wire.MsgType.BET, someFirst(r, agency)).frame;
  if (x < 0.72) return msg.encodeDone(seq, r() < 0.5 ? int(r, 0, 100) : int(r, 0, 0xffffffff));
  if (x < 0.85) return msg.encodeWinnersRequest(seq, r() < 0.1);
  if (x < 0.92) {
    // a server-to-agency frame sent the wrong way
    return msg.encodeFaultReply(wire.MsgType.ERROR, seq, 5, "backwards");
  }
  const type = pick(r, [...CLIENT_TYPES]);
  const p = Buffer.alloc(int(r, 0, 8));
  const out = Buffer.alloc(wire.HEADER_SIZE + p.length);
  out[0] = wire.MAGIC;
  out[1] = 1;
  out[2] = type;
  out.writeUInt32BE(seq, 4);
  out.writeUInt32BE(p.length, 8);
  return out;
}

function randomBytes(r: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = int(r, 0, 255);
  return b;
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xc0, 0xc3, 0xfa, 0xfe, 0xff];

/** One mutation of a valid frame; the kind is returned for the statistics. */
function mutate(r: () => number, f: Buffer, other: Buffer): [string, Buffer] {
  const b = Buffer.from(f);
  switch (int(r, 0, 10)) {
    case 0: {
      for (let k = int(r, 1, 8); k > 0; k--) {
        const i = int(r, 0, b.length - 1);
        b[i] = b[i]! ^ (1 << int(r, 0, 7));
      }
      return ["bitflip", b];
    }
    case 1: {
      for (let k = int(r, 1, 4); k > 0; k--) b[int(r, 0, b.length - 1)] = pick(r, INTERESTING);
      return ["byte", b];
    }
    case 2: {
      const field = int(r, 0, 3);
      b[field] = r() < 0.5 ? pick(r, INTERESTING) : int(r, 0, 255);
      return [["magic", "version", "type", "flags"][field]!, b];
    }
    case 3: {
      const len = b.readUInt32BE(8);
      const v = pick(r, [
        len + 1,
        Math.max(0, len - 1),
        0,
        wire.MAX_PAYLOAD,
        wire.MAX_PAYLOAD + 1,
        0xffffffff,
        int(r, 0, 0xffffffff),
        int(r, 0, 64),
      ]);
      b.writeUInt32BE(v >>> 0, 8);
      return ["length", b];
    }
    case 4:
      return ["truncate", b.subarray(0, int(r, 0, b.length - 1))];
    case 5: {
      const extra = randomBytes(r, int(r, 1, 40));
      const out = Buffer.concat([b, extra]);
      if (r() < 0.5) out.writeUInt32BE(out.length - wire.HEADER_SIZE, 8);
      return ["append", out];
    }
    case 6: {
      const p = randomBytes(r, int(r, 0, r() < 0.9 ? 64 : 3000));
      const out = Buffer.concat([b.subarray(0, wire.HEADER_SIZE), p]);
      out.writeUInt32BE(p.length, 8);
      return ["random_payload", out];
    }
    case 7: {
      // BATCH/BET structure: count, one field length, or a name's bytes
      if (b.length < wire.HEADER_SIZE + 6) return ["short", b];
      const what = int(r, 0, 3);
      if (what === 0) b.writeUInt16BE(int(r, 0, 0xffff), wire.HEADER_SIZE + 4);
      else if (what === 1) b.writeUInt32BE(int(r, 0, 0xffffffff), wire.HEADER_SIZE);
      else {
        const count = b.readUInt16BE(wire.HEADER_SIZE + 4);
        const lenAt = wire.HEADER_SIZE + 6 + int(r, 0, Math.max(0, Math.min(count * 5, 100) - 1));
        if (lenAt < b.length) {
          if (what === 2) b[lenAt] = int(r, 0, 255);
          else {
            // invalid UTF-8 or a continuation byte where a name starts
            const dataAt = wire.HEADER_SIZE + 6 + count * 5;
            if (dataAt < b.length) b[int(r, dataAt, b.length - 1)] = pick(r, [0x80, 0xc3, 0xff]);
          }
        }
      }
      return ["batch_structure", b];
    }
    case 8:
      return [
        "splice",
        Buffer.concat([
          b.subarray(0, int(r, 0, b.length)),
          other.subarray(int(r, 0, other.length)),
        ]),
      ];
    case 9:
      return ["duplicate", Buffer.concat([b, b])];
    default: {
      b.writeUInt32BE(int(r, 0, 0xffffffff), 4);
      return ["seq", b];
    }
  }
}

// ------------------------------------------------------------------------------ the model

interface Script {
  index: number;
  /** The agency named by a leading valid HELLO (0: none). */
  agency: number;
  /** Half-close right after sending, without waiting for the replies. */
  halfClose: boolean;
  chunks: Buffer[];
  frames: number;
  kinds: string[];
  bytes: Buffer;
}

interface Expectation {
  echo: boolean;
  /** Sequence numbers of the requests the server must answer (in order) unless it errors out. */
  replySeqs: number[];
  /** A framing violation is in the stream: the server must send ERROR or close. */
  violation: boolean;
}

/** What the server must do with `bytes`, computed with the same decoder over the whole stream. */
function expect(bytes: Buffer): Expectation {
  if (bytes.length === 0 || bytes[0] !== wire.MAGIC) {
    return { echo: true, replySeqs: [], violation: false };
  }
  const dec = new FrameDecoder();
  dec.push(bytes);
  const replySeqs: number[] = [];
  let held = false;
  for (;;) {
    const f = dec.next();
    if (f === null) return { echo: false, replySeqs, violation: false };
    if (isFault(f)) return { echo: false, replySeqs, violation: true };
    const fr = f as wire.Frame;
    if (held) continue;
    if (!CLIENT_TYPES.has(fr.type)) {
      // answered by ERROR UNKNOWN_TYPE: a violation
      return { echo: false, replySeqs, violation: true };
    }
    // a valid "wait for the draw" request is held (and so is every reply after it)
    if (
      fr.type === wire.MsgType.WINNERS_REQUEST &&
      fr.payload.length === 1 &&
      fr.payload[0] === 1
    ) {
      held = true;
      continue;
    }
    replySeqs.push(fr.seq);
  }
}

function makeScript(index: number, budget: number): Script {
  const r = rng((SEED ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  const parts: Buffer[] = [];
  const kinds: string[] = [];
  let seq = int(r, 0, 5);
  let agency = 0;
  if (r() < 0.6) {
    agency = pick(r, [2, 3, 2, 3, 1]);
    parts.push(msg.encodeHello(++seq, { agency, secret: agency === 1 ? "nope" : "" }));
  }
  const n = Math.min(budget, int(r, 1, 8));
  // a quarter of the identified connections first send a few well-formed batches (stored when
  // they start at the committed position), so that mutations also hit a session in mid-ingest
  const clean = agency > 1 && r() < 0.25 ? int(r, 1, n) : 0;
  let pos = committedHint.get(agency) ?? 0;
  let prev = validFrame(r, ++seq, agency);
  for (let k = 0; k < n; k++) {
    const x = r();
    let f: Buffer;
    if (k < clean) {
      const b = batchFrame(r, ++seq, wire.MsgType.BATCH, pos, false);
      pos += b.count;
      f = b.frame;
    } else {
      f = validFrame(r, ++seq, agency);
    }
    if (k < clean || x < 0.3) {
      parts.push(f);
      kinds.push("valid");
    } else if (x < 0.9) {
      const [kind, m] = mutate(r, f, prev);
      parts.push(m);
      kinds.push(kind);
    } else {
      const junk = randomBytes(r, int(r, 1, 80));
      if (r() < 0.7) junk[0] = wire.MAGIC;
      if (r() < 0.5) junk[1] = 1;
      parts.push(junk);
      kinds.push("random");
    }
    prev = f;
  }
  const bytes = Buffer.concat(parts);
  // random chunking: whole, random cuts, or byte by byte for a stretch
  const chunks: Buffer[] = [];
  const mode = r();
  let off = 0;
  while (off < bytes.length) {
    const size =
      mode < 0.3 ? bytes.length : mode < 0.85 ? int(r, 1, 64) : off < 40 ? 1 : bytes.length;
    chunks.push(bytes.subarray(off, off + size));
    off += size;
  }
  return { index, agency, halfClose: r() < 0.1, chunks, frames: n, kinds, bytes };
}

// ------------------------------------------------------------------------------ one connection

interface Stats {
  connections: number;
  frames: number;
  kinds: Record<string, number>;
  replies: Record<string, number>;
  echo: number;
  violations: number;
  /** Closed by the server before we half-closed, without an ERROR frame. */
  closedByServer: number;
  halfClosed: number;
}

const TYPE_NAME = new Map<number, string>(Object.entries(wire.MsgType).map(([k, v]) => [v, k]));

function fail(s: Script, why: string): never {
  throw new Error(
    `fuzz seed=${SEED} connection #${s.index} (${s.kinds.join(",")}): ${why}\nsent ${s.bytes.length} bytes: ${s.bytes.subarray(0, 200).toString("hex")}`,
  );
}

async function runConnection(port: number, s: Script, stats: Stats): Promise<void> {
  const exp = expect(s.bytes);
  const sock = createConnection({ port, host: "127.0.0.1", noDelay: true });
  const dec = new FrameDecoder();
  const got: wire.Frame[] = [];
  let closed = false;
  let ended = false;
  let closedByServer = false;
  let protocolError: string | null = null;
  let wake: () => void = () => undefined;
  sock.on("data", (c: Buffer) => {
    if (exp.echo) return; // a text connection: the server echoes lines, not frames
    dec.push(c);
    for (;;) {
      const f = dec.next();
      if (f === null) break;
      if (isFault(f)) {
        protocolError = f.reason;
        break;
      }
      const fr = f as wire.Frame;
      got.push({ ...fr, payload: Buffer.from(fr.payload) });
    }
    wake();
  });
  sock.on("error", () => undefined);
  const closedP = new Promise<void>((resolve) =>
    sock.on("close", () => {
      closed = true;
      if (!ended) closedByServer = true;
      wake();
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    sock.once("connect", resolve);
    sock.once("error", reject);
  });
  for (const c of s.chunks) {
    if (closed) break;
    await new Promise<void>((resolve) => sock.write(c, () => resolve()));
  }
  const units = () => {
    // reply units: frames grouped by MORE, ERROR excluded
    let n = 0;
    for (const f of got) if (f.type !== wire.MsgType.ERROR && (f.flags & wire.FLAG_MORE) === 0) n++;
    return n;
  };
  const hasError = () => got.some((f) => f.type === wire.MsgType.ERROR);
  if (s.halfClose) {
    ended = true;
    sock.end();
  }
  const settled = () => {
    if (closed || hasError() || s.halfClose) return true;
    if (exp.echo) return true;
    if (exp.violation) return false; // must be answered by ERROR or a close
    return units() >= exp.replySeqs.length;
  };
  await guard(
    new Promise<void>((resolve) => {
      const check = () => (settled() ? resolve() : undefined);
      wake = check;
      check();
    }),
    15_000,
    () =>
      `fuzz seed=${SEED} connection #${s.index} (${s.kinds.join(",")}): no answer: ` +
      `${units()}/${exp.replySeqs.length} replies, violation=${exp.violation}, ` +
      `got ${got.map((f) => TYPE_NAME.get(f.type)).join(",")}; sent ${s.bytes.subarray(0, 120).toString("hex")}`,
  );
  ended = true;
  sock.end();
  if (s.halfClose) stats.halfClosed++;
  await guard(closedP, 15_000, () => `fuzz seed=${SEED} connection #${s.index}: not closed`);

  // what came back must be well-formed server frames, replies in request order, ERROR last
  if (protocolError) fail(s, `the server sent a malformed frame: ${protocolError}`);
  if (dec.pending > 0) fail(s, `the server's last frame is incomplete (${dec.pending} bytes)`);
  let unit = 0;
  got.forEach((f, i) => {
    if (!SERVER_TYPES.has(f.type)) fail(s, `server sent type ${f.type}`);
    let name = TYPE_NAME.get(f.type)!;
    if (f.type === wire.MsgType.ERROR || f.type === wire.MsgType.REJECT) {
      const fr = msg.decodeFaultReply(f.payload);
      if (!isFault(fr)) name += ` ${errorName(fr.code)}`;
    }
    stats.replies[name] = (stats.replies[name] ?? 0) + 1;
    if (f.type === wire.MsgType.ERROR) {
      if (i !== got.length - 1) fail(s, "ERROR is not the last frame");
      if (isFault(msg.decodeFaultReply(f.payload))) fail(s, "malformed ERROR payload");
      return;
    }
    const want = exp.replySeqs[unit];
    if (want === undefined || f.seq !== want) {
      fail(s, `reply ${TYPE_NAME.get(f.type)} seq ${f.seq}, expected seq ${want} (in order)`);
    }
    const payloadOk =
      f.type === wire.MsgType.ACK
        ? !isFault(msg.decodeAck(f.payload))
        : f.type === wire.MsgType.WELCOME
          ? !isFault(msg.decodeWelcome(f.payload))
          : f.type === wire.MsgType.REJECT
            ? !isFault(msg.decodeFaultReply(f.payload))
            : f.type === wire.MsgType.WINNERS
              ? !isFault(msg.decodeWinners(f.payload))
              : f.payload.length === 0;
    if (!payloadOk) fail(s, `malformed ${TYPE_NAME.get(f.type)} payload`);
    if ((f.flags & wire.FLAG_MORE) === 0) unit++;
    if (s.agency > 1 && (f.type === wire.MsgType.ACK || f.type === wire.MsgType.WELCOME)) {
      const a = msg.decodeAck(f.payload.subarray(0, 4));
      if (!isFault(a)) committedHint.set(s.agency, Math.max(committedHint.get(s.agency) ?? 0, a));
    }
  });
  if (exp.violation && !hasError() && !closedByServer && !s.halfClose) {
    fail(s, "a framing violation got neither an ERROR frame nor a close");
  }
  stats.connections++;
  stats.frames += s.frames;
  for (const k of s.kinds) stats.kinds[k] = (stats.kinds[k] ?? 0) + 1;
  if (exp.echo) stats.echo++;
  if (exp.violation) stats.violations++;
  if (closedByServer && !hasError()) stats.closedByServer++;
}

// ------------------------------------------------------------------------------ the test

describe("live fuzzing", () => {
  test(`${CASES} random and mutated frames (seed ${SEED}); the server survives and still serves`, async () => {
    const t0 = Date.now();
    const dir = tempDir();
    dirs.push(dir);
    await generateDataset({ out: dir, agencies: 1, bets: 300, winners: 3, seed: SEED });
    const port = await freePort();
    const procs: ManagedProcess[] = [];
    try {
      const server = await startServerOn(
        port,
        {
          AGENCIES: "3",
          AGENCY_SECRETS: `1:${SECRET}`,
          HELLO_TIMEOUT: "3s",
          IDLE_TIMEOUT: "5s",
          LOGGING_LEVEL: "INFO",
        },
        dir,
      );
      procs.push(server);
      const rss = sampleRss(server.child.pid!, 250);
      const stats: Stats = {
        connections: 0,
        frames: 0,
        kinds: {},
        replies: {},
        echo: 0,
        violations: 0,
        closedByServer: 0,
        halfClosed: 0,
      };
      let next = 0;
      let sent = 0;
      const worker = async () => {
        while (sent < CASES) {
          const s = makeScript(next++, CASES - sent);
          sent += s.frames;
          await runConnection(port, s, stats);
          if (!server.alive) throw new Error(`fuzz seed=${SEED}: server died\n${tail(server)}`);
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      assert.ok(server.alive, `server died:\n${tail(server)}`);

      // the fuzzer may have left agencies 2 and 3 open: finish them, then a real agency 1 runs
      for (const a of [2, 3]) {
        const c = await RawClient.connect(port);
        const w = await c.hello(a);
        if (w.state === 0) {
          const ack = await c.done(w.committed);
          assert.equal(ack.type, wire.MsgType.ACK, `DONE of agency ${a}`);
        }
        await c.close();
      }
      const agency = startAgency(
        1,
        port,
        { CLI_DATA_FILE: join(dir, "agency-1.csv"), CLI_SECRET: SECRET, CLI_BATCH_MAXAMOUNT: "40" },
        dir,
      );
      procs.push(agency);
      const code = await guard(agency.code, 30_000, () => `agency 1:\n${tail(agency)}`);
      assert.equal(code, 0, tail(agency));
      assert.equal(loggedWinnerCount(agency), 3);
      const mem = rss.stop();
      server.child.kill("SIGTERM");
      assert.equal(await server.code, 0, tail(server));
      assert.equal(server.stderr, "", "nothing on the server's stderr");
      assert.ok(
        !server.lines.some((l) => / (ERROR|CRITICAL) /.test(l)),
        server.lines.filter((l) => / (ERROR|CRITICAL) /.test(l)).join("\n"),
      );
      console.log(
        `fuzz seed ${SEED}: ${stats.frames} frames over ${stats.connections} connections in ` +
          `${Date.now() - t0}ms; framing violations ${stats.violations}, echo-path ${stats.echo}, ` +
          `half-closed early ${stats.halfClosed}, closed by the server without ERROR ` +
          `${stats.closedByServer}; server peak RSS ${Math.round(mem.peakRssKb / 1024)} MB\n` +
          `  sent: ${JSON.stringify(stats.kinds)}\n  replies: ${JSON.stringify(stats.replies)}`,
      );
      assert.ok(stats.frames >= CASES);
    } finally {
      await reap(procs);
    }
  });
});
