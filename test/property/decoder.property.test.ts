// Property tests of the wire protocol: any chunking of a frame stream decodes to the same frames;
// bets round-trip through BatchBuilder -> FrameDecoder -> decodeBatch; and a seeded fuzz run of
// over a million random and mutated frames that must never throw nor hang.
//
// Reproduce a fuzz failure with: FUZZ_SEED=<printed seed> node --test dist/test/property/decoder.property.test.js

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { rng } from "../../kit/rng.js";
import { todayKey, validateBetFields } from "../../shared/src/bet.js";
import { type Fault, isFault } from "../../shared/src/errors.js";
import { FrameDecoder } from "../../shared/src/protocol/decoder.js";
import * as wire from "../../shared/src/protocol/frame.js";
import * as msg from "../../shared/src/protocol/messages.js";
import {
  batchFields,
  bytewise,
  decodeChunks,
  messageFixtures,
  payloadOf,
  split,
} from "../lib/codec.js";

const TYPES = Object.values(wire.MsgType) as number[];

interface Plain {
  type: number;
  flags: number;
  seq: number;
  payload: Buffer;
}

// ------------------------------------------------------------------ any split of a frame stream

const frameArb: fc.Arbitrary<Plain> = fc.record({
  type: fc.constantFrom(...TYPES),
  flags: fc.integer({ min: 0, max: 255 }),
  seq: fc.integer({ min: 0, max: 0xffffffff }),
  payload: fc
    .oneof(
      { weight: 8, arbitrary: fc.uint8Array({ maxLength: 64 }) },
      { weight: 2, arbitrary: fc.uint8Array({ maxLength: 2048 }) },
      {
        weight: 1,
        arbitrary: fc
          .integer({ min: wire.MAX_PAYLOAD - 16, max: wire.MAX_PAYLOAD })
          .map((n) => new Uint8Array(n).fill(n & 0xff)),
      },
    )
    .map((u) => Buffer.from(u)),
});

describe("any split of a frame stream decodes to the same frames", () => {
  it("valid frames, concatenated and split at arbitrary points", () => {
    fc.assert(
      fc.property(
        fc.array(frameArb, { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (frames, cuts) => {
          const bytes = Buffer.concat(
            frames.map((f) => wire.encodeFrame(f.type, f.seq, f.payload, f.flags)),
          );
          for (const chunks of [[bytes], split(bytes, cuts)]) {
            const r = decodeChunks(chunks);
            assert.equal(r.fault, null);
            assert.equal(r.frames.length, frames.length);
            r.frames.forEach((got, i) => {
              const want = frames[i]!;
              assert.equal(got.type, want.type);
              assert.equal(got.flags, want.flags);
              assert.equal(got.seq, want.seq);
              assert.ok(got.payload.equals(want.payload), `payload of frame ${i}`);
            });
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("byte-by-byte feeding of small streams", () => {
    fc.assert(
      fc.property(
        fc.array(
          frameArb.filter((f) => f.payload.length < 300),
          { maxLength: 6 },
        ),
        (frames) => {
          const bytes = Buffer.concat(
            frames.map((f) => wire.encodeFrame(f.type, f.seq, f.payload, f.flags)),
          );
          const r = decodeChunks(bytewise(bytes));
          assert.equal(r.fault, null);
          assert.deepEqual(
            r.frames.map((f) => [f.type, f.flags, f.seq, f.payload.toString("hex")]),
            frames.map((f) => [f.type, f.flags, f.seq, f.payload.toString("hex")]),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});

// ------------------------------------------------------------------ bets round trip

function fitUtf8(s: string, max: number): string {
  const cps = Array.from(s);
  while (Buffer.byteLength(cps.join(""), "utf8") > max) cps.pop();
  return cps.join("");
}

const tricky = fc.constantFrom(
  ",",
  ";",
  "|",
  ":",
  '"',
  "'",
  "\n",
  "\r",
  "\r\n",
  " ",
  "\t",
  "á",
  "é",
  "Ñ",
  "ü",
  "Fornerón",
  "Álvarez",
  "😀",
  "👩‍👩‍👧",
  "🇦🇷",
  "\u0000",
  "\u2028",
  "\ufeff",
);
const nameArb = fc
  .array(
    fc.oneof(
      tricky,
      fc.string({ unit: "binary", maxLength: 6 }),
      fc.string({ unit: "grapheme", maxLength: 6 }),
      fc.string({ unit: "grapheme-ascii", maxLength: 12 }),
      fc.constant("x".repeat(300)),
      fc.constant("ñ".repeat(130)),
    ),
    { minLength: 1, maxLength: 30 },
  )
  .map((parts) => fitUtf8(parts.join(""), 255))
  .filter((s) => s.length > 0);

const DAY = 86_400_000;
const MIN_DAY = Date.UTC(1900, 0, 1) / DAY;
const MAX_DAY = Date.UTC(2020, 11, 31) / DAY;
const dateArb = fc
  .integer({ min: MIN_DAY, max: MAX_DAY })
  .map((d) => new Date(d * DAY).toISOString().slice(0, 10));

const betArb = fc.tuple(
  nameArb,
  nameArb,
  fc.stringMatching(/^[0-9]{1,10}$/),
  dateArb,
  fc.stringMatching(/^[0-9]{1,8}$/),
);

describe("bets round-trip through BatchBuilder -> FrameDecoder -> decodeBatch", () => {
  it("arbitrary bets, arbitrary chunking", () => {
    const today = todayKey();
    fc.assert(
      fc.property(
        fc.array(betArb, { minLength: 1, maxLength: 120 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.integer({ min: 0, max: 0x7fffffff }),
        (bets, cuts, first) => {
          // pack into as many frames as needed, as the agency does
          const frames: Buffer[] = [];
          const counts: number[] = [];
          const b = new msg.BatchBuilder();
          let start = first;
          for (const bet of bets) {
            if (!b.addStrings(bet)) {
              assert.ok(b.count > 0, "a single bet of <= 5 x 255 bytes always fits");
              frames.push(b.build(wire.MsgType.BATCH, frames.length, start));
              counts.push(b.count);
              start += b.count;
              b.reset();
              assert.ok(b.addStrings(bet));
            }
          }
          frames.push(b.build(wire.MsgType.BATCH, frames.length, start));
          counts.push(b.count);
          for (const f of frames)
            assert.ok(f.length <= wire.MAX_FRAME, `frame of ${f.length} bytes`);

          const r = decodeChunks(split(Buffer.concat(frames), cuts));
          assert.equal(r.fault, null);
          assert.equal(r.frames.length, frames.length);
          const got: string[][] = [];
          let expectFirst = first;
          r.frames.forEach((f, i) => {
            assert.equal(f.type, wire.MsgType.BATCH);
            assert.equal(f.seq, i);
            const v = msg.decodeBatch(f.payload);
            if (isFault(v)) assert.fail(`decodeBatch: ${v.code} ${v.reason}`);
            const view = v as msg.BatchView;
            assert.equal(view.first, expectFirst);
            assert.equal(view.count, counts[i]);
            expectFirst += view.count;
            batchFields(view).forEach((row, k) => {
              // the server's validation accepts every such bet and parses its number
              const n = validateBetFields(view.buf, view.starts, view.ends, k * 5, today);
              assert.equal(n, Number(row[4]), `validation of ${JSON.stringify(row)}`);
              got.push(row);
            });
          });
          assert.deepEqual(got, bets);
        },
      ),
      { numRuns: 150 },
    );
  });
});

// ------------------------------------------------------------------ payload decoders on random bytes

const DECODERS: Array<[string, (p: Buffer) => unknown]> = [
  ["decodeHello", msg.decodeHello],
  ["decodeWelcome", msg.decodeWelcome],
  ["decodeAck", msg.decodeAck],
  ["decodeDone", msg.decodeDone],
  ["decodeFaultReply", msg.decodeFaultReply],
  ["decodeWinnersRequest", msg.decodeWinnersRequest],
  ["decodeWinners", msg.decodeWinners],
  ["decodeBatch", msg.decodeBatch],
];

function checkDecoderResult(name: string, r: unknown): void {
  assert.ok(r !== undefined && r !== null, `${name} returned ${r}`);
  if (typeof r === "object" && "code" in r && "reason" in r && !("index" in r)) {
    assert.equal(typeof (r as Fault).code, "number", name);
  }
}

describe("payload decoders never throw on random payloads", () => {
  it("random bytes, and valid payloads with random bytes overwritten", () => {
    const valid = messageFixtures().map(([, f]) => payloadOf(f));
    const payloadArb = fc.oneof(
      fc.uint8Array({ maxLength: 400 }).map((u) => Buffer.from(u)),
      fc
        .tuple(
          fc.constantFrom(...valid),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
          fc.nat(),
        )
        .map(([p, writes, cut]) => {
          const c = Buffer.from(p);
          for (const [at, v] of writes) if (c.length > 0) c[at % c.length] = v;
          return c.subarray(0, cut % (c.length + 1));
        }),
    );
    fc.assert(
      fc.property(payloadArb, (p) => {
        for (const [name, dec] of DECODERS) checkDecoderResult(name, dec(p));
      }),
      { numRuns: 20_000 },
    );
  });
});

// ------------------------------------------------------------------ fuzz

const FRAMES_PER_RUN = 500;
const FUZZ_RUNS = 2100;
const FUZZ_TARGET = 1_000_000;

/** The payload decoder of each message type (BET and BATCH share one; NOT_READY has no payload). */
const DECODER_OF_TYPE = new Map<number, (p: Buffer) => unknown>([
  [wire.MsgType.HELLO, msg.decodeHello],
  [wire.MsgType.BET, msg.decodeBatch],
  [wire.MsgType.BATCH, msg.decodeBatch],
  [wire.MsgType.DONE, msg.decodeDone],
  [wire.MsgType.WINNERS_REQUEST, msg.decodeWinnersRequest],
  [wire.MsgType.ACK, msg.decodeAck],
  [wire.MsgType.WELCOME, msg.decodeWelcome],
  [wire.MsgType.REJECT, msg.decodeFaultReply],
  [wire.MsgType.ERROR, msg.decodeFaultReply],
  [wire.MsgType.WINNERS, msg.decodeWinners],
]);

function buildPool(rand: () => number): Buffer[] {
  const int = (n: number) => Math.floor(rand() * n);
  const pool: Buffer[] = [];
  const alphabet = ["a", "Z", "ñ", "é", ",", "|", '"', "\n", "😀", "0", "9", "-", " "];
  const str = (max: number) => {
    let s = "";
    const n = 1 + int(max);
    for (let i = 0; i < n; i++) s += alphabet[int(alphabet.length)];
    return s;
  };
  for (let i = 0; i < 200; i++) {
    const b = new msg.BatchBuilder();
    const n = 1 + int(i % 10 === 0 ? 200 : 8);
    for (let k = 0; k < n; k++) {
      if (!b.addStrings([str(20), str(20), String(int(1e9)), "2000-01-31", String(int(1e8))]))
        break;
    }
    pool.push(b.build(int(2) ? wire.MsgType.BATCH : wire.MsgType.BET, int(1000), int(1e6)));
    pool.push(msg.encodeHello(i, { agency: int(10), secret: str(5) }));
    pool.push(msg.encodeWelcome(i, { committed: int(1e6), state: int(3) }));
    pool.push(msg.encodeAck(i, int(1e6)));
    pool.push(msg.encodeDone(i, int(1e6)));
    pool.push(
      msg.encodeFaultReply(
        int(2) ? wire.MsgType.REJECT : wire.MsgType.ERROR,
        i,
        23,
        str(30),
        int(5),
      ),
    );
    pool.push(msg.encodeWinnersRequest(i, int(2) === 1));
    pool.push(msg.encodeNotReady(i));
    pool.push(
      ...msg.encodeWinners(
        i,
        Array.from({ length: int(i % 20 === 0 ? 1500 : 10) }, () => String(int(1e10))),
      ),
    );
  }
  return pool;
}

/** One random or mutated frame. */
/** XORs one byte of `f` in place; `at` is within `f`. */
function flip(f: Buffer, at: number, mask: number): void {
  f[at] = (f[at] ?? 0) ^ mask;
}

function fuzzFrame(rand: () => number, pool: Buffer[]): Buffer {
  const int = (n: number) => Math.floor(rand() * n);
  const roll = rand();
  if (roll < 0.08) {
    // pure noise
    const b = Buffer.allocUnsafe(int(64));
    for (let i = 0; i < b.length; i++) b[i] = int(256);
    return b;
  }
  let f: Buffer;
  if (roll < 0.25) {
    // a random frame with a valid header and random payload
    const len = int(10) === 0 ? int(wire.MAX_PAYLOAD + 1) : int(48);
    const p = Buffer.allocUnsafe(len);
    for (let i = 0; i < len; i++) p[i] = int(256);
    f = wire.encodeFrame(TYPES[int(TYPES.length)]!, int(0x100000000), p, int(256));
  } else {
    f = Buffer.from(pool[int(pool.length)]!);
  }
  const mutations = int(4);
  for (let m = 0; m < mutations; m++) {
    switch (int(8)) {
      case 0: // flip a byte
        if (f.length > 0) flip(f, int(f.length), 1 + int(255));
        break;
      case 1: // flip a header byte
        if (f.length > 0) flip(f, int(Math.min(f.length, wire.HEADER_SIZE)), 1 << int(8));
        break;
      case 2: // truncate
        f = f.subarray(0, int(f.length + 1));
        break;
      case 3: // random length field
        if (f.length >= wire.HEADER_SIZE) f.writeUInt32BE(int(0x100000000), 8);
        break;
      case 4: // length off by a little
        if (f.length >= wire.HEADER_SIZE) {
          const len = f.readUInt32BE(8) + int(9) - 4;
          f.writeUInt32BE(Math.max(0, len) >>> 0, 8);
        }
        break;
      case 5: // length just past the limit
        if (f.length >= wire.HEADER_SIZE) f.writeUInt32BE(wire.MAX_PAYLOAD + int(3), 8);
        break;
      case 6: {
        // append garbage or a copy of itself
        const extra = int(2) ? f.subarray(0, int(f.length + 1)) : Buffer.from([int(256), int(256)]);
        f = Buffer.concat([f, extra]);
        break;
      }
      default: // overwrite a payload byte with an extreme value
        if (f.length > wire.HEADER_SIZE)
          f[wire.HEADER_SIZE + int(f.length - wire.HEADER_SIZE)] = int(2) ? 0 : 0xff;
    }
  }
  return f;
}

function randomChunks(rand: () => number, bytes: Buffer): Buffer[] {
  const mode = Math.floor(rand() * 4);
  if (mode === 0 || bytes.length === 0) return [bytes];
  if (mode === 1 && bytes.length <= 96) return bytewise(bytes);
  const cuts: number[] = [];
  const n = 1 + Math.floor(rand() * 6);
  for (let i = 0; i < n; i++) cuts.push(Math.floor(rand() * bytes.length));
  return split(bytes, cuts);
}

interface Outcome {
  frames: string[];
  consumed: number;
  fault: number | null;
}

/** Decodes with the given chunking; checks the no-hang bound and the invariants of each frame. */
function fuzzDecode(chunks: Buffer[], total: number): Outcome {
  const d = new FrameDecoder();
  const out: Outcome = { frames: [], consumed: 0, fault: null };
  // every returned frame consumes >= 12 bytes: more calls than this means a loop that does not advance
  const budget = chunks.length + Math.floor(total / wire.HEADER_SIZE) + 2;
  let calls = 0;
  for (const c of chunks) {
    d.push(c);
    for (;;) {
      if (++calls > budget) assert.fail("decoder does not advance (would hang)");
      const f = d.next();
      if (f === null) break;
      if (isFault(f)) {
        out.fault = f.code;
        assert.equal(d.pending, 0);
        return out;
      }
      const fr = f as wire.Frame;
      assert.ok(TYPES.includes(fr.type));
      assert.ok(fr.payload.length <= wire.MAX_PAYLOAD);
      out.consumed += wire.HEADER_SIZE + fr.payload.length;
      out.frames.push(`${fr.type}/${fr.flags}/${fr.seq}/${fr.payload.length}`);
      const dec = DECODER_OF_TYPE.get(fr.type);
      if (dec) checkDecoderResult("payload decoder", dec(fr.payload));
    }
  }
  const e = d.end();
  if (e) {
    out.fault = e.code;
    assert.ok(total - out.consumed > 0, "TRUNCATED_FRAME only with bytes left");
  } else {
    assert.equal(out.consumed, total, "without a fault every byte belongs to a frame");
  }
  return out;
}

describe("fuzz: random and mutated frames never throw, never hang", () => {
  it(`${FUZZ_TARGET.toLocaleString("en")}+ frames in random chunkings give frames or a Fault`, (t) => {
    const seed = process.env.FUZZ_SEED
      ? Number(process.env.FUZZ_SEED)
      : (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0;
    const message = `fuzz seed: ${seed} (rerun with FUZZ_SEED=${seed})`;
    console.log(message);
    t.diagnostic(message);
    const pool = buildPool(rng(seed));
    let frames = 0;
    let faults = 0;
    const started = Date.now();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x7fffffff }), (runSeed) => {
        const rand = rng(runSeed);
        const stream: Buffer[] = [];
        for (let i = 0; i < FRAMES_PER_RUN; i++) {
          const bytes = fuzzFrame(rand, pool);
          if (i < 20) stream.push(bytes);
          const chunked = fuzzDecode(randomChunks(rand, bytes), bytes.length);
          // the outcome does not depend on the chunking
          const whole = fuzzDecode([bytes], bytes.length);
          assert.deepEqual(chunked, whole);
          if (whole.fault !== null) faults++;
          frames++;
        }
        // several mutated frames back to back in one connection
        const all = Buffer.concat(stream);
        assert.deepEqual(
          fuzzDecode(randomChunks(rand, all), all.length),
          fuzzDecode([all], all.length),
        );
      }),
      { seed, numRuns: FUZZ_RUNS, endOnFailure: true },
    );
    const summary = `fuzzed ${frames} frames (${faults} faults) in ${Date.now() - started} ms`;
    console.log(summary);
    t.diagnostic(summary);
    assert.ok(frames >= FUZZ_TARGET, `only ${frames} frames`);
  });
});
