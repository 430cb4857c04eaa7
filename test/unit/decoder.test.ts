// Streaming FrameDecoder: fixtures fed whole and byte by byte, zero copy, early header checks,
// oversize lengths refused before buffering, truncation, and sticky failure.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode, type Fault, isFault } from "../../shared/src/errors.js";
import { FrameDecoder } from "../../shared/src/protocol/decoder.js";
import * as wire from "../../shared/src/protocol/frame.js";
import { encodeAck, encodeDone, encodeHello } from "../../shared/src/protocol/messages.js";
import { batchFrame, bytewise, decodeChunks, hex, messageFixtures } from "../lib/codec.js";

const FIXTURES = messageFixtures();

interface Plain {
  type: number;
  flags: number;
  seq: number;
  payload: string;
}

function plain(f: wire.Frame): Plain {
  return { type: f.type, flags: f.flags, seq: f.seq, payload: f.payload.toString("hex") };
}

/** The frame a fixture's bytes describe, read straight from the header. */
function expected(bytes: Buffer): Plain {
  return {
    type: bytes[2]!,
    flags: bytes[3]!,
    seq: bytes.readUInt32BE(4),
    payload: bytes
      .subarray(wire.HEADER_SIZE, wire.HEADER_SIZE + bytes.readUInt32BE(8))
      .toString("hex"),
  };
}

/** Decodes the chunks with one FrameDecoder: the frames as plain values, and the fault that ended it. */
function feed(chunks: Buffer[]): { frames: Plain[]; fault: Fault | null } {
  const { frames, fault } = decodeChunks(chunks);
  return { frames: frames.map(plain), fault };
}

describe("fixtures", () => {
  it("fixtures are well formed and no larger than 8192 bytes", () => {
    for (const [name, f] of FIXTURES) {
      assert.equal(f[0], 0xfa, name);
      assert.equal(f[1], 1, name);
      assert.equal(f.length, wire.HEADER_SIZE + f.readUInt32BE(8), name);
      assert.ok(f.length <= wire.MAX_FRAME, name);
    }
    assert.equal(
      FIXTURES.find(([n]) => n === "frame of exactly 8192 bytes")![1].length,
      wire.MAX_FRAME,
    );
    assert.ok(
      FIXTURES.find(([n]) => n === "BATCH filled by BatchBuilder")![1].length >
        wire.MAX_FRAME - 429,
    );
  });

  for (const [name, bytes] of FIXTURES) {
    it(`${name}: whole, byte by byte, and at every split point give the same frame`, () => {
      const want = [expected(bytes)];
      assert.deepEqual(feed([bytes]), { frames: want, fault: null });
      assert.deepEqual(feed(bytewise(bytes)), { frames: want, fault: null });
      const step = bytes.length > 512 ? 37 : 1;
      for (let cut = 1; cut < bytes.length; cut += step) {
        const r = feed([bytes.subarray(0, cut), bytes.subarray(cut)]);
        assert.deepEqual(r, { frames: want, fault: null }, `${name} cut at ${cut}`);
      }
    });
  }

  it("all fixtures concatenated: one chunk == byte by byte == 3-byte chunks", () => {
    const all = Buffer.concat(FIXTURES.map(([, b]) => b));
    const want = FIXTURES.map(([, b]) => expected(b));
    assert.deepEqual(feed([all]), { frames: want, fault: null });
    assert.deepEqual(feed(bytewise(all)), { frames: want, fault: null });
    const threes: Buffer[] = [];
    for (let i = 0; i < all.length; i += 3) threes.push(all.subarray(i, i + 3));
    assert.deepEqual(feed(threes), { frames: want, fault: null });
  });

  it("pending counts the bytes not yet returned", () => {
    const d = new FrameDecoder();
    const a = encodeDone(1, 5);
    const b = encodeAck(2, 7);
    d.push(Buffer.concat([a, b.subarray(0, 5)]));
    assert.equal(d.pending, a.length + 5);
    assert.ok(!isFault(d.next()));
    assert.equal(d.pending, 5);
    assert.equal(d.next(), null);
    d.push(b.subarray(5));
    assert.equal(d.pending, b.length);
    assert.ok(!isFault(d.next()));
    assert.equal(d.pending, 0);
    assert.equal(d.next(), null);
    assert.equal(d.end(), null);
  });

  it("empty chunks are ignored", () => {
    const d = new FrameDecoder();
    d.push(Buffer.alloc(0));
    assert.equal(d.next(), null);
    assert.equal(d.pending, 0);
    assert.equal(d.end(), null);
  });
});

describe("zero copy", () => {
  it("a frame inside one chunk is a view of that chunk", () => {
    const frames = [
      encodeDone(1, 1),
      batchFrame(wire.MsgType.BATCH, 5),
      encodeHello(2, { agency: 1, secret: "x" }),
    ];
    const chunk = Buffer.concat(frames);
    const d = new FrameDecoder();
    d.push(chunk);
    let off = 0;
    for (const f of frames) {
      const got = d.next() as wire.Frame;
      assert.ok(!isFault(got) && got !== null);
      assert.equal(got.payload.buffer, chunk.buffer, "same memory");
      assert.equal(got.payload.byteOffset, chunk.byteOffset + off + wire.HEADER_SIZE);
      assert.equal(got.payload.length, f.length - wire.HEADER_SIZE);
      off += f.length;
    }
  });

  it("a frame spanning chunks is copied out correctly (and the copy is independent)", () => {
    const f = batchFrame(wire.MsgType.BATCH, 3);
    const a = Buffer.from(f.subarray(0, 20));
    const b = Buffer.from(f.subarray(20));
    const d = new FrameDecoder();
    d.push(a);
    assert.equal(d.next(), null);
    d.push(b);
    const got = d.next() as wire.Frame;
    assert.deepEqual(got.payload, f.subarray(wire.HEADER_SIZE));
    a.fill(0);
    b.fill(0);
    assert.deepEqual(got.payload, f.subarray(wire.HEADER_SIZE));
  });
});

describe("header checks as soon as the byte arrives", () => {
  function pushByByte(bytes: Buffer): {
    at: number;
    result: wire.Frame | Fault | null;
    d: FrameDecoder;
  } {
    const d = new FrameDecoder();
    let result: wire.Frame | Fault | null = null;
    for (let i = 0; i < bytes.length; i++) {
      d.push(bytes.subarray(i, i + 1));
      result = d.next();
      if (result !== null) return { at: i + 1, result, d };
    }
    return { at: -1, result, d };
  }

  it("BAD_MAGIC on the first byte (text such as 'GET /')", () => {
    const { at, result, d } = pushByByte(Buffer.from("GET / HTTP/1.0\r\n"));
    assert.equal(at, 1);
    assert.equal((result as Fault).code, ErrorCode.BAD_MAGIC);
    assert.equal(d.pending, 0);
  });

  it("BAD_MAGIC for every first byte but 0xfa", () => {
    for (let b = 0; b < 256; b++) {
      const d = new FrameDecoder();
      d.push(Buffer.from([b]));
      const r = d.next();
      if (b === 0xfa) assert.equal(r, null);
      else assert.equal((r as Fault).code, ErrorCode.BAD_MAGIC, `first byte ${b}`);
    }
  });

  it("UNSUPPORTED_VERSION on the second byte", () => {
    for (const v of [0, 2, 0xff]) {
      const { at, result } = pushByByte(
        hex(`fa ${v.toString(16).padStart(2, "0")} 01 00 00000000 00000000`),
      );
      assert.equal(at, 2);
      assert.equal((result as Fault).code, ErrorCode.UNSUPPORTED_VERSION);
    }
  });

  it("UNKNOWN_TYPE on the third byte", () => {
    const known = new Set<number>(Object.values(wire.MsgType));
    for (let t = 0; t < 256; t++) {
      const d = new FrameDecoder();
      d.push(hex(`fa 01 ${t.toString(16).padStart(2, "0")}`));
      const r = d.next();
      if (known.has(t)) assert.equal(r, null, `type ${t}`);
      else assert.equal((r as Fault).code, ErrorCode.UNKNOWN_TYPE, `type ${t}`);
    }
    const { at } = pushByByte(hex("fa 01 06 00 00000000 00000000"));
    assert.equal(at, 3);
  });

  it("a header claiming 4 GB is FRAME_TOO_LARGE right after the 12 header bytes", () => {
    const header = hex("fa 01 03 00 00000001 ffffffff");
    const { at, result, d } = pushByByte(Buffer.concat([header, Buffer.alloc(100, 0x41)]));
    assert.equal(at, wire.HEADER_SIZE);
    assert.equal((result as Fault).code, ErrorCode.FRAME_TOO_LARGE);
    assert.equal(d.pending, 0, "nothing buffered after the fault");
    d.push(Buffer.alloc(1 << 20));
    assert.equal(d.pending, 0, "nothing buffered after the fault, even when more bytes come");
  });

  it("the same header inside one big chunk is refused without waiting for the payload", () => {
    const d = new FrameDecoder();
    d.push(Buffer.concat([hex("fa 01 03 00 00000001 80000000"), Buffer.alloc(64)]));
    assert.equal((d.next() as Fault).code, ErrorCode.FRAME_TOO_LARGE);
    assert.equal(d.pending, 0);
  });

  it("a payload length of 8180 is accepted (waits), 8181 is refused", () => {
    const ok = new FrameDecoder();
    ok.push(hex(`fa 01 03 00 00000001 ${wire.MAX_PAYLOAD.toString(16).padStart(8, "0")}`));
    assert.equal(ok.next(), null);
    assert.equal(ok.pending, wire.HEADER_SIZE);
    const bad = new FrameDecoder();
    bad.push(hex(`fa 01 03 00 00000001 ${(wire.MAX_PAYLOAD + 1).toString(16).padStart(8, "0")}`));
    assert.equal((bad.next() as Fault).code, ErrorCode.FRAME_TOO_LARGE);
  });

  it("honours a smaller maxFrame given to the constructor", () => {
    const d = new FrameDecoder(64);
    d.push(wire.encodeFrame(wire.MsgType.ACK, 1, Buffer.alloc(52)));
    assert.ok(!isFault(d.next()));
    d.push(wire.encodeFrame(wire.MsgType.ACK, 1, Buffer.alloc(53)));
    assert.equal((d.next() as Fault).code, ErrorCode.FRAME_TOO_LARGE);
  });

  it("frames before a bad one are still returned, then the fault", () => {
    const r = feed([Buffer.concat([encodeDone(1, 1), encodeAck(2, 2), Buffer.from("hello\n")])]);
    assert.equal(r.frames.length, 2);
    assert.equal(r.fault?.code, ErrorCode.BAD_MAGIC);
  });
});

describe("end of stream", () => {
  it("end() with a partial header or payload gives TRUNCATED_FRAME", () => {
    const f = batchFrame(wire.MsgType.BATCH, 2);
    for (const cut of [1, 2, 3, 11, 12, 13, f.length - 1]) {
      const d = new FrameDecoder();
      d.push(f.subarray(0, cut));
      assert.equal(d.next(), null, `cut ${cut}`);
      const e = d.end();
      assert.equal(e?.code, ErrorCode.TRUNCATED_FRAME, `cut ${cut}`);
      assert.equal(d.pending, 0);
    }
  });

  it("end() after whole frames is null", () => {
    assert.deepEqual(feed([encodeDone(1, 1), encodeDone(2, 2)]).fault, null);
  });

  it("end() after a fault returns that fault", () => {
    const d = new FrameDecoder();
    d.push(Buffer.from("x"));
    const f = d.next() as Fault;
    assert.equal(f.code, ErrorCode.BAD_MAGIC);
    assert.equal(d.end(), f);
  });
});

describe("after a fault the decoder stays failed", () => {
  for (const [name, bad, code] of [
    ["bad magic", Buffer.from("A"), ErrorCode.BAD_MAGIC],
    ["bad version", hex("fa 09"), ErrorCode.UNSUPPORTED_VERSION],
    ["unknown type", hex("fa 01 77"), ErrorCode.UNKNOWN_TYPE],
    ["too large", hex("fa 01 03 00 00000000 ffffffff"), ErrorCode.FRAME_TOO_LARGE],
  ] as Array<[string, Buffer, number]>) {
    it(name, () => {
      const d = new FrameDecoder();
      d.push(bad);
      const f = d.next() as Fault;
      assert.equal(f.code, code);
      d.push(encodeDone(1, 1));
      assert.equal(d.pending, 0);
      assert.equal(d.next(), f, "same fault again");
      assert.equal(d.next(), f);
      assert.equal(d.end(), f);
    });
  }

  it("after TRUNCATED_FRAME", () => {
    const d = new FrameDecoder();
    d.push(encodeDone(1, 1).subarray(0, 5));
    const f = d.end()!;
    assert.equal(f.code, ErrorCode.TRUNCATED_FRAME);
    d.push(encodeDone(1, 1));
    assert.equal(d.next(), f);
  });
});
