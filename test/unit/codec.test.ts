// Payload codecs and frames: golden bytes derived by hand from the layout documented in
// shared/src/protocol/frame.ts and messages.ts, round-trips, refusal of malformed payloads.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode, errorName, isErrorCode, isFault } from "../../shared/src/errors.js";
import {
  encodeFrame,
  FLAG_MORE,
  type Frame,
  HEADER_SIZE,
  MAX_FRAME,
  MAX_PAYLOAD,
  MsgType,
} from "../../shared/src/protocol/frame.js";
import {
  AgencyState,
  BATCH_STAGING_BYTES,
  BatchBuilder,
  type BatchView,
  decodeAck,
  decodeBatch,
  decodeDone,
  decodeFaultReply,
  decodeHello,
  decodeWelcome,
  decodeWinners,
  decodeWinnersRequest,
  encodeAck,
  encodeDone,
  encodeFaultReply,
  encodeHello,
  encodeNotReady,
  encodeWelcome,
  encodeWinners,
  encodeWinnersRequest,
  MAX_BETS_PER_FRAME,
  NO_INDEX,
} from "../../shared/src/protocol/messages.js";
import {
  assertFault,
  batchFields,
  batchPayload,
  decodeChunks,
  hex,
  payloadOf,
} from "../lib/codec.js";

/** Decodes a buffer holding exactly the given frames (and nothing else). */
function decodeAll(bytes: Buffer): Frame[] {
  const { frames, fault } = decodeChunks([bytes]);
  assert.equal(fault, null, `unexpected fault ${fault?.code} ${fault?.reason}`);
  return frames;
}

describe("frame header", () => {
  it("constants match the documented layout", () => {
    assert.equal(HEADER_SIZE, 12);
    assert.equal(MAX_FRAME, 8192);
    assert.equal(MAX_PAYLOAD, 8180);
    assert.equal(FLAG_MORE, 1);
  });

  it("encodeFrame lays out magic, version, type, flags, seq, length, payload", () => {
    const f = encodeFrame(MsgType.DONE, 0x01020304, hex("aabb"), FLAG_MORE);
    assert.deepEqual(f, hex("fa 01 04 01 01020304 00000002 aabb"));
  });

  it("encodeFrame accepts a payload of exactly 8180 bytes and refuses 8181", () => {
    const ok = encodeFrame(MsgType.BATCH, 1, Buffer.alloc(MAX_PAYLOAD, 7));
    assert.equal(ok.length, MAX_FRAME);
    assert.throws(() => encodeFrame(MsgType.BATCH, 1, Buffer.alloc(MAX_PAYLOAD + 1)), RangeError);
  });

  it("seq is written as an unsigned 32-bit value", () => {
    const f = encodeFrame(MsgType.NOT_READY, 0xffffffff, Buffer.alloc(0));
    assert.deepEqual(f, hex("fa 01 84 00 ffffffff 00000000"));
  });
});

describe("golden bytes of every message type", () => {
  it("HELLO agency 3, secret 's'", () => {
    assert.deepEqual(
      encodeHello(7, { agency: 3, secret: "s" }),
      hex("fa 01 01 00 00000007 00000006 00000003 01 73"),
    );
  });

  it("HELLO with an empty secret and a UTF-8 secret", () => {
    assert.deepEqual(
      encodeHello(0, { agency: 0x01020304, secret: "" }),
      hex("fa 01 01 00 00000000 00000005 01020304 00"),
    );
    assert.deepEqual(
      encodeHello(1, { agency: 5, secret: "ñ" }),
      hex("fa 01 01 00 00000001 00000007 00000005 02 c3b1"),
    );
  });

  it("HELLO refuses a secret longer than 255 bytes", () => {
    assert.throws(() => encodeHello(1, { agency: 1, secret: "x".repeat(256) }), RangeError);
    assert.equal(encodeHello(1, { agency: 1, secret: "x".repeat(255) }).length, 12 + 5 + 255);
  });

  it("WELCOME committed 258, state DONE", () => {
    assert.deepEqual(
      encodeWelcome(1, { committed: 258, state: AgencyState.DONE }),
      hex("fa 01 81 00 00000001 00000005 00000102 01"),
    );
  });

  it("ACK value 0x01020304", () => {
    assert.deepEqual(encodeAck(9, 0x01020304), hex("fa 01 80 00 00000009 00000004 01020304"));
  });

  it("REJECT INVALID_DATE at bet 2 with a reason", () => {
    assert.deepEqual(
      encodeFaultReply(MsgType.REJECT, 5, ErrorCode.INVALID_DATE, "bad", 2),
      hex("fa 01 82 00 00000005 00000009 0017 0002 0003 626164"),
    );
  });

  it("ERROR FRAME_TOO_LARGE without index or reason", () => {
    assert.deepEqual(
      encodeFaultReply(MsgType.ERROR, 6, ErrorCode.FRAME_TOO_LARGE, ""),
      hex("fa 01 85 00 00000006 00000006 0003 ffff 0000"),
    );
  });

  it("DONE total 100", () => {
    assert.deepEqual(encodeDone(4, 100), hex("fa 01 04 00 00000004 00000004 00000064"));
  });

  it("WINNERS_REQUEST wait / no wait", () => {
    assert.deepEqual(encodeWinnersRequest(1, true), hex("fa 01 05 00 00000001 00000001 01"));
    assert.deepEqual(encodeWinnersRequest(2, false), hex("fa 01 05 00 00000002 00000001 00"));
  });

  it("NOT_READY has an empty payload", () => {
    assert.deepEqual(encodeNotReady(3), hex("fa 01 84 00 00000003 00000000"));
  });

  it("WINNERS ['123', '4'] and the empty list", () => {
    const frames = encodeWinners(2, ["123", "4"]);
    assert.equal(frames.length, 1);
    assert.deepEqual(frames[0], hex("fa 01 83 00 00000002 00000008 0002 03 313233 01 34"));
    const empty = encodeWinners(8, []);
    assert.equal(empty.length, 1);
    assert.deepEqual(empty[0], hex("fa 01 83 00 00000008 00000002 0000"));
  });

  it("BET: one bet built by BatchBuilder", () => {
    const b = new BatchBuilder();
    assert.ok(b.addStrings(["Ana", "Li", "123", "2000-01-01", "7574"]));
    const frame = b.build(MsgType.BET, 3, 10);
    const expected = hex(
      `fa 01 02 00 00000003 00000021
       0000000a 0001 03 02 03 0a 04
       ${Buffer.from("AnaLi1232000-01-017574").toString("hex")}`,
    );
    assert.deepEqual(frame, expected);
    assert.equal(b.frameSize, frame.length);
  });

  it("BATCH: two bets, lengths first, then the field bytes bet after bet", () => {
    const b = new BatchBuilder();
    assert.ok(b.addStrings(["Jo", "Pé", "1", "1999-03-17", "0"]));
    assert.ok(b.addStrings(["A,B", "C|D", "00000000", "2000-01-01", "42"]));
    const frame = b.build(MsgType.BATCH, 0x10, 0x01020304);
    const data = Buffer.from("JoPé11999-03-170A,BC|D000000002000-01-0142", "utf8");
    const expected = hex(
      `fa 01 03 00 00000010 ${(6 + 10 + data.length).toString(16).padStart(8, "0")}
       01020304 0002
       02 03 01 0a 01
       03 03 08 0a 02
       ${data.toString("hex")}`,
    );
    assert.deepEqual(frame, expected);
  });
});

describe("round trips", () => {
  it("HELLO", () => {
    for (const h of [
      { agency: 0, secret: "" },
      { agency: 5, secret: "s3cr3t" },
      { agency: 0xffffffff, secret: "ñandú 😀" },
    ]) {
      const [f] = decodeAll(encodeHello(1, h));
      assert.equal(f!.type, MsgType.HELLO);
      assert.deepEqual(decodeHello(f!.payload), h);
    }
  });

  it("WELCOME", () => {
    for (const state of Object.values(AgencyState)) {
      for (const committed of [0, 1, 78697, 0xffffffff]) {
        const frame = encodeWelcome(2, { committed, state });
        assert.deepEqual(decodeWelcome(payloadOf(frame)), { committed, state });
      }
    }
  });

  it("ACK and DONE", () => {
    for (const v of [0, 1, 65536, 0xffffffff]) {
      assert.equal(decodeAck(payloadOf(encodeAck(1, v))), v);
      assert.equal(decodeDone(payloadOf(encodeDone(1, v))), v);
    }
  });

  it("REJECT and ERROR", () => {
    const r = encodeFaultReply(MsgType.REJECT, 1, ErrorCode.INVALID_NUMBER, "número 'abc'", 7);
    assert.deepEqual(decodeFaultReply(payloadOf(r)), {
      code: ErrorCode.INVALID_NUMBER,
      index: 7,
      reason: "número 'abc'",
    });
    const e = encodeFaultReply(MsgType.ERROR, 1, ErrorCode.SHUTTING_DOWN, "bye");
    assert.deepEqual(decodeFaultReply(payloadOf(e)), {
      code: ErrorCode.SHUTTING_DOWN,
      index: NO_INDEX,
      reason: "bye",
    });
  });

  it("a decoded REJECT/ERROR reply is not mistaken for a decoding Fault by isFault", () => {
    // client/src/agency.ts replyFault() relies on isFault() to tell a malformed reply from a
    // decoded one; FaultReply {code, index, reason} has no `type`, so isFault() says true.
    const r = decodeFaultReply(
      payloadOf(encodeFaultReply(MsgType.REJECT, 1, ErrorCode.INVALID_DATE, "bad", 2)),
    );
    assert.equal(isFault(r), false, "isFault(decoded REJECT) must be false");
  });

  it("a REJECT/ERROR code this build does not know stays unknown", () => {
    const d = decodeFaultReply(hex("0063 ffff 0001 78")); // code 99
    assert.ok(!isFault(d));
    assert.equal(d.code, 99);
    assert.equal(isErrorCode(d.code), false);
    assert.equal(errorName(d.code), "UNKNOWN_99");
  });

  it("REJECT keeps at most 200 characters of the reason", () => {
    const r = encodeFaultReply(MsgType.REJECT, 1, ErrorCode.MALFORMED, "x".repeat(5000));
    const d = decodeFaultReply(payloadOf(r));
    assert.deepEqual(d, { code: ErrorCode.MALFORMED, index: NO_INDEX, reason: "x".repeat(200) });
    assert.ok(r.length <= MAX_FRAME);
  });

  it("WINNERS_REQUEST", () => {
    assert.deepEqual(decodeWinnersRequest(payloadOf(encodeWinnersRequest(1, true))), {
      wait: true,
    });
    assert.deepEqual(decodeWinnersRequest(payloadOf(encodeWinnersRequest(1, false))), {
      wait: false,
    });
  });

  it("WINNERS", () => {
    const docs = ["30904465", "00000000", "1", "9999999999"];
    const frames = encodeWinners(4, docs);
    assert.equal(frames.length, 1);
    assert.equal(frames[0]![3], 0, "a single frame has no MORE flag");
    assert.deepEqual(decodeWinners(payloadOf(frames[0]!)), docs);
  });

  it("BATCH through BatchBuilder, FrameDecoder and decodeBatch", () => {
    const bets = [
      ["Santiago Lionel", "Lorca", "30904465", "1999-03-17", "7574"],
      ["A", "B", "00000000", "2000-01-01", "0"],
      ['Ana "la, jefa"', "Fornerón\nÁlvarez", "1", "1950-12-31", "99999999"],
      ["😀", "x;y|z:w", "12", "2024-02-29", "7"],
    ];
    const b = new BatchBuilder();
    for (const bet of bets) assert.ok(b.addStrings(bet));
    const [f] = decodeAll(b.build(MsgType.BATCH, 77, 1000));
    assert.equal(f!.type, MsgType.BATCH);
    assert.equal(f!.seq, 77);
    const v = decodeBatch(f!.payload);
    assert.ok(!isFault(v));
    const view = v as BatchView;
    assert.equal(view.first, 1000);
    assert.equal(view.count, bets.length);
    assert.deepEqual(batchFields(view), bets);
  });

  it("BatchBuilder.reset starts a new batch; undo removes the last bet", () => {
    const b = new BatchBuilder();
    b.addStrings(["A", "B", "1", "2000-01-01", "1"]);
    b.addStrings(["C", "D", "2", "2000-01-02", "2"]);
    b.undo();
    let v = decodeBatch(payloadOf(b.build(MsgType.BATCH, 1, 0))) as BatchView;
    assert.deepEqual(batchFields(v), [["A", "B", "1", "2000-01-01", "1"]]);
    b.reset();
    assert.equal(b.count, 0);
    b.addStrings(["E", "F", "3", "2000-01-03", "3"]);
    v = decodeBatch(payloadOf(b.build(MsgType.BATCH, 1, 5))) as BatchView;
    assert.deepEqual(batchFields(v), [["E", "F", "3", "2000-01-03", "3"]]);
  });
});

describe("decoders refuse malformed payloads with MALFORMED, never throwing", () => {
  const M = ErrorCode.MALFORMED;
  const cases: Array<[string, () => unknown]> = [
    ["HELLO empty", () => decodeHello(hex(""))],
    ["HELLO 4 bytes", () => decodeHello(hex("00000001"))],
    ["HELLO secret length beyond payload", () => decodeHello(hex("00000001 02 73"))],
    ["HELLO trailing byte", () => decodeHello(hex("00000001 01 7373"))],
    ["HELLO secret not UTF-8", () => decodeHello(hex("00000001 01 ff"))],
    ["HELLO secret cut UTF-8", () => decodeHello(hex("00000001 01 c3"))],
    ["WELCOME 4 bytes", () => decodeWelcome(hex("00000001"))],
    ["WELCOME 6 bytes", () => decodeWelcome(hex("00000001 0000"))],
    ["WELCOME unknown state", () => decodeWelcome(hex("00000001 03"))],
    ["ACK empty", () => decodeAck(hex(""))],
    ["ACK 3 bytes", () => decodeAck(hex("000001"))],
    ["ACK 5 bytes", () => decodeAck(hex("0000000100"))],
    ["DONE 3 bytes", () => decodeDone(hex("000001"))],
    ["DONE 8 bytes", () => decodeDone(hex("0000000100000001"))],
    ["REJECT 5 bytes", () => decodeFaultReply(hex("0017 0002 00"))],
    ["REJECT reason longer than payload", () => decodeFaultReply(hex("0017 0002 0004 626164"))],
    ["REJECT reason shorter than payload", () => decodeFaultReply(hex("0017 0002 0002 626164"))],
    ["WINNERS_REQUEST empty", () => decodeWinnersRequest(hex(""))],
    ["WINNERS_REQUEST 2 bytes", () => decodeWinnersRequest(hex("0100"))],
    ["WINNERS_REQUEST value 2", () => decodeWinnersRequest(hex("02"))],
    ["WINNERS_REQUEST value ff", () => decodeWinnersRequest(hex("ff"))],
    ["WINNERS empty", () => decodeWinners(hex(""))],
    ["WINNERS 1 byte", () => decodeWinners(hex("00"))],
    ["WINNERS count beyond payload", () => decodeWinners(hex("0002 01 31"))],
    ["WINNERS length beyond payload", () => decodeWinners(hex("0001 05 3132"))],
    ["WINNERS trailing bytes", () => decodeWinners(hex("0001 01 31 32"))],
    ["WINNERS huge count", () => decodeWinners(hex("ffff"))],
    ["BATCH empty", () => decodeBatch(hex(""))],
    ["BATCH 5 bytes", () => decodeBatch(hex("00000000 00"))],
    ["BATCH lengths missing", () => decodeBatch(hex("00000000 0001 01 01 01"))],
    ["BATCH field bytes missing", () => decodeBatch(hex("00000000 0001 01 01 01 01 01 41424344"))],
    ["BATCH trailing bytes", () => decodeBatch(hex("00000000 0001 01 01 01 01 01 414243444546"))],
    ["BATCH count 65535 with no lengths", () => decodeBatch(hex("00000000 ffff"))],
  ];
  for (const [name, run] of cases) {
    it(name, () => {
      let r: unknown;
      assert.doesNotThrow(() => {
        r = run();
      });
      assertFault(r, M, name);
    });
  }

  it("REJECT with a non-UTF-8 reason decodes (replacement characters), no throw", () => {
    const r = decodeFaultReply(hex("0017 0002 0001 ff"));
    assert.deepEqual(r, { code: 0x17, index: 2, reason: "\ufffd" });
  });
});

describe("decodeBatch", () => {
  const ok = (s: string) => Buffer.from(s, "utf8");
  const validBet = [ok("Ana"), ok("Li"), ok("1"), ok("2000-01-01"), ok("5")];

  it("EMPTY_BATCH for a count of 0 (with or without trailing bytes)", () => {
    assertFault(decodeBatch(hex("00000000 0000")), ErrorCode.EMPTY_BATCH, "count 0");
    assertFault(decodeBatch(hex("00000005 0000 4142")), ErrorCode.EMPTY_BATCH, "count 0 + bytes");
  });

  it("a hand-built valid payload decodes", () => {
    const v = decodeBatch(batchPayload(9, [validBet, validBet]));
    assert.ok(!isFault(v));
    assert.equal((v as BatchView).first, 9);
    assert.deepEqual(batchFields(v as BatchView), [
      ["Ana", "Li", "1", "2000-01-01", "5"],
      ["Ana", "Li", "1", "2000-01-01", "5"],
    ]);
  });

  it("refuses bytes that are not UTF-8 (INVALID_NAME)", () => {
    for (const bad of [hex("ff"), hex("c3"), hex("c0af"), hex("eda080"), hex("f8888080")]) {
      const p = batchPayload(0, [
        [Buffer.concat([ok("A"), bad]), ok("B"), ok("1"), ok("2000-01-01"), ok("5")],
      ]);
      assertFault(decodeBatch(p), ErrorCode.INVALID_NAME, `first name with ${bad.toString("hex")}`);
      const q = batchPayload(0, [
        validBet,
        [ok("A"), Buffer.concat([bad, ok("B")]), ok("1"), ok("2000-01-01"), ok("5")],
      ]);
      assertFault(decodeBatch(q), ErrorCode.INVALID_NAME, `last name with ${bad.toString("hex")}`);
    }
  });

  it("refuses a name starting with a continuation byte even if the region is valid UTF-8", () => {
    // "é" = c3 a9 split between first and last name: the whole byte region is valid UTF-8.
    const p = batchPayload(0, [[hex("41c3"), hex("a942"), ok("1"), ok("2000-01-01"), ok("5")]]);
    assertFault(decodeBatch(p), ErrorCode.INVALID_NAME, "last name starting with a9");
    // "😀" = f0 9f 98 80 split between the number of bet 0 and the first name of bet 1.
    const q = batchPayload(0, [
      [ok("A"), ok("B"), ok("1"), ok("2000-01-01"), hex("35f0")],
      [hex("9f9880"), ok("B"), ok("1"), ok("2000-01-01"), ok("5")],
    ]);
    assertFault(decodeBatch(q), ErrorCode.INVALID_NAME, "first name of bet 1 starting with 9f");
  });

  it("accepts empty fields (validation, not decoding, refuses them)", () => {
    const v = decodeBatch(batchPayload(0, [[ok(""), ok(""), ok(""), ok(""), ok("")]]));
    assert.ok(!isFault(v));
    assert.equal((v as BatchView).count, 1);
  });
});

describe("WINNERS split across frames", () => {
  it("documents that do not fit 8180 bytes go on in frames flagged MORE, except the last", () => {
    // 10-digit documents take 11 bytes: (8180 - 2) / 11 = 743 per frame.
    const docs = Array.from({ length: 2000 }, (_, i) => String(1_000_000_000 + i));
    const frames = encodeWinners(42, docs);
    assert.equal(frames.length, 3);
    const decoded: string[] = [];
    frames.forEach((f, i) => {
      assert.ok(f.length <= MAX_FRAME, `frame ${i} has ${f.length} bytes`);
      assert.equal(f[2], MsgType.WINNERS);
      assert.equal(f.readUInt32BE(4), 42, "every frame echoes the seq");
      assert.equal(f[3], i < frames.length - 1 ? FLAG_MORE : 0, `flags of frame ${i}`);
      const d = decodeWinners(payloadOf(f));
      assert.ok(!isFault(d));
      decoded.push(...(d as string[]));
    });
    assert.equal(frames[0]!.readUInt16BE(HEADER_SIZE), 743);
    assert.equal(frames[0]!.length, HEADER_SIZE + 2 + 743 * 11);
    assert.deepEqual(decoded, docs);
  });

  it("exactly one full frame needs no MORE flag; one more document makes two frames", () => {
    const full = Array.from({ length: 743 }, (_, i) => String(2_000_000_000 + i));
    const one = encodeWinners(1, full);
    assert.equal(one.length, 1);
    assert.equal(one[0]![3], 0);
    assert.equal(one[0]!.length, HEADER_SIZE + 2 + 743 * 11);
    // 2 + 743 * 11 = 8175: a 1-digit document (2 bytes) still fits, a 10-digit one does not
    const short = encodeWinners(1, [...full, "7"]);
    assert.equal(short.length, 1);
    assert.equal(short[0]!.length, MAX_FRAME - 3);
    const two = encodeWinners(1, [...full, "7777777777"]);
    assert.equal(two.length, 2);
    assert.equal(two[0]![3], FLAG_MORE);
    assert.equal(two[1]![3], 0);
    assert.deepEqual(decodeWinners(payloadOf(two[1]!)), ["7777777777"]);
  });

  it("a WINNERS stream decodes through FrameDecoder in order", () => {
    const docs = Array.from({ length: 5000 }, (_, i) => String(i * 7919));
    const frames = decodeAll(Buffer.concat(encodeWinners(3, docs)));
    const got: string[] = [];
    for (const f of frames) got.push(...(decodeWinners(f.payload) as string[]));
    assert.deepEqual(got, docs);
    assert.ok(frames.slice(0, -1).every((f) => f.flags === FLAG_MORE));
    assert.equal(frames.at(-1)!.flags, 0);
  });
});

describe("BatchBuilder never exceeds 8192 bytes", () => {
  const big = `${"é".repeat(127)}x`; // 255 bytes
  const fat = [big, big, "1234567890", "2000-01-01", "12345678"];
  const fatBytes = 255 * 2 + 10 + 10 + 8;

  it("refuses the bet that would overflow, keeping what it had", () => {
    const b = new BatchBuilder();
    let n = 0;
    while (b.addStrings(fat)) {
      n++;
      assert.ok(b.frameSize <= MAX_FRAME);
    }
    assert.equal(n, Math.floor((MAX_PAYLOAD - 6) / (fatBytes + 5)));
    assert.equal(b.count, n, "the refused bet was not added");
    assert.ok(b.sizeWith(fatBytes) > MAX_FRAME, "the refused bet really would not fit");
    const frame = b.build(MsgType.BATCH, 1, 0);
    assert.equal(frame.length, b.frameSize);
    assert.ok(frame.length <= MAX_FRAME);
    const [f] = decodeAll(frame);
    const v = decodeBatch(f!.payload) as BatchView;
    assert.equal(v.count, n);
    assert.deepEqual(batchFields(v)[n - 1], fat);
  });

  it("fills up to exactly 8192 bytes when the sizes allow it, and no further", () => {
    const b = new BatchBuilder();
    const small = ["A", "B", "1", "2000-01-01", "1"]; // 14 field bytes + 5 lengths = 19
    while (b.addStrings(small));
    const room = MAX_FRAME - b.frameSize;
    assert.ok(room < 19, `${room} bytes left, a small bet needs 19`);
    // top up with a bet of exactly the bytes left (if a bet that small is possible)
    const filler = room - 5; // field bytes available
    if (filler >= 5 + 13) {
      const name = "n".repeat(filler - 13);
      assert.ok(b.addStrings([name, "B", "1", "2000-01-01", "1"]));
      assert.equal(b.frameSize, MAX_FRAME);
    }
    assert.ok(b.build(MsgType.BATCH, 1, 0).length <= MAX_FRAME);
  });

  it("a bet that exactly reaches 8192 is accepted, one more byte is refused", () => {
    const b = new BatchBuilder();
    const tail = ["y", "1234567890", "2000-01-01", "12345678"];
    const tailBytes = 1 + 10 + 10 + 8;
    // names travel with a u8 length: fill with 255-byte names until one last bet can close it
    while (MAX_FRAME - b.frameSize > 5 + 255 + tailBytes) {
      assert.ok(b.addStrings(["x".repeat(255), ...tail]));
    }
    const need = MAX_FRAME - b.frameSize - 5 - tailBytes; // first-name bytes that fill the frame
    assert.ok(need > 0 && need <= 255, `need ${need}`);
    const before = b.count;
    assert.equal(b.addStrings(["z".repeat(need + 1), ...tail]), false);
    assert.equal(b.count, before);
    assert.ok(b.addStrings(["z".repeat(need), ...tail]));
    assert.equal(b.frameSize, MAX_FRAME);
    assert.equal(b.build(MsgType.BATCH, 1, 0).length, MAX_FRAME);
    assert.equal(b.addStrings(["a", "b", "1", "2000-01-01", "1"]), false);
  });
});

describe("BatchBuilder.buildInto and a scanner's access", () => {
  it("buildInto lays out at an offset exactly the bytes build returns", () => {
    const b = new BatchBuilder();
    b.addStrings(["Ana", "Pérez", "30111222", "1990-01-01", "7574"]);
    b.addStrings(["Zoe", "D'Angelo", "1", "1980-12-31", "0"]);
    const out = Buffer.alloc(b.frameSize + 20, 0xee);
    const n = b.buildInto(out, 7, MsgType.BATCH, 0x01020304, 0xfffffffe);
    assert.equal(n, b.frameSize);
    assert.deepEqual(out.subarray(7, 7 + n), b.build(MsgType.BATCH, 0x01020304, 0xfffffffe));
    assert.ok(out.subarray(0, 7).every((x) => x === 0xee));
    assert.ok(out.subarray(7 + n).every((x) => x === 0xee));
    const v = decodeBatch(out.subarray(7 + HEADER_SIZE, 7 + n)) as BatchView;
    assert.equal(v.first, 0xfffffffe);
    assert.equal(v.count, 2);
  });

  it("rows copied in by a scanner (data, lengths, dataLen, count) give the same frame", () => {
    const rows = [
      ["Ana", "Pérez", "30111222", "1990-01-01", "7574"],
      ["Zoe", "D'Angelo", "1", "1980-12-31", "0"],
    ];
    const a = new BatchBuilder();
    for (const r of rows) a.addStrings(r);
    const staging = Buffer.alloc(BATCH_STAGING_BYTES);
    const b = new BatchBuilder(staging);
    for (const r of rows) {
      for (const [f, field] of r.entries()) {
        b.lengths[b.count * 5 + f] = b.data.write(field, b.dataLen, "utf8");
        b.dataLen += b.lengths[b.count * 5 + f]!;
      }
      b.count++;
    }
    assert.equal(b.data, staging);
    assert.deepEqual(b.build(MsgType.BATCH, 9, 3), a.build(MsgType.BATCH, 9, 3));
  });

  it("the lengths table holds the most bets a frame can hold; a short staging area is refused", () => {
    const b = new BatchBuilder();
    const empty = ["", "", "", "", ""];
    while (b.addStrings(empty));
    assert.equal(b.count, MAX_BETS_PER_FRAME);
    assert.ok(b.build(MsgType.BATCH, 1, 0).length <= MAX_FRAME);
    assert.throws(() => new BatchBuilder(Buffer.alloc(MAX_PAYLOAD)), RangeError);
  });
});
