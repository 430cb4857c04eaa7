// The agency's link takes the ACKs of its batches straight from the socket's chunks and leaves
// everything else to the frame decoder. Whatever the chunking of the server's replies (a frame
// split anywhere, many in one chunk), the agency must get the same replies in the same order:
// ACK values for its posted batches, frames for REJECTs and for the requests it awaits, and
// the server's ERROR as a broken link after the replies that came before it.

import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Link, LinkError, type PostedReply } from "../../client/src/link.js";
import { ErrorCode } from "../../shared/src/errors.js";
import { encodeFrame, FLAG_MORE, type Frame, MsgType } from "../../shared/src/protocol/frame.js";
import { encodeAck, encodeFaultReply, encodeWelcome } from "../../shared/src/protocol/messages.js";
import { split } from "../lib/codec.js";

/** Just what Link uses of a socket; `data` events are emitted by the test. */
class FakeSocket extends EventEmitter {
  writes = 0;
  destroyed = false;
  writableNeedDrain = false;
  write(): boolean {
    this.writes++;
    return true;
  }
  cork(): void {}
  uncork(): void {}
  end(): void {}
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    queueMicrotask(() => this.emit("close"));
  }
}

function newLink(sock: FakeSocket): Link {
  const Ctor = Link as unknown as new (s: Socket) => Link;
  return new Ctor(sock as unknown as Socket);
}

type Reply =
  | { kind: "ack"; value: number }
  /** two frames, the first flagged MORE: not for the ACK fast path (no server sends it today) */
  | { kind: "ack-more"; value: number }
  | { kind: "reject"; code: number; index: number; reason: string };

const reply: fc.Arbitrary<Reply> = fc.oneof(
  { weight: 8, arbitrary: fc.nat().map((value) => ({ kind: "ack" as const, value })) },
  { weight: 1, arbitrary: fc.nat().map((value) => ({ kind: "ack-more" as const, value })) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.constantFrom(
          ErrorCode.INVALID_DATE,
          ErrorCode.OUT_OF_SEQUENCE,
          ErrorCode.STORAGE_FAILURE,
        ),
        fc.integer({ min: 0, max: 0xffff }),
        fc.string({ maxLength: 20 }),
      )
      .map(([code, index, reason]) => ({ kind: "reject" as const, code, index, reason })),
  },
);

function encodeReply(seq: number, r: Reply): Buffer {
  if (r.kind === "ack") return encodeAck(seq, r.value);
  if (r.kind === "ack-more") {
    const first = encodeAck(seq, r.value);
    first[3] = FLAG_MORE;
    return Buffer.concat([first, encodeAck(seq, 1)]);
  }
  return encodeFaultReply(MsgType.REJECT, seq, r.code as never, r.reason, r.index);
}

function same(got: PostedReply, want: Reply): void {
  if (want.kind === "ack-more") {
    assert.notEqual(typeof got, "number");
    assert.equal((got as Frame[]).length, 2);
    assert.equal((got as Frame[])[0]!.payload.readUInt32BE(0), want.value);
    return;
  }
  if (want.kind === "ack") {
    // an ACK is a number on the fast path, or a frame when it came through the decoder
    const v = typeof got === "number" ? got : (got[0]!.payload.readUInt32BE(0) as number);
    if (typeof got !== "number") assert.equal(got[0]!.type, MsgType.ACK);
    assert.equal(v, want.value);
    return;
  }
  assert.notEqual(typeof got, "number");
  const f = (got as Frame[])[0]!;
  assert.equal(f.type, MsgType.REJECT);
  assert.equal(f.payload.readUInt16BE(0), want.code);
  assert.equal(f.payload.readUInt16BE(2), want.index);
}

describe("Link: posted requests' replies in any chunking", () => {
  it("awaited HELLO, posted batches, awaited DONE; optional server ERROR at the end", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(reply, { maxLength: 40 }),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 30 }),
        async (replies, endWithError, cuts) => {
          const sock = new FakeSocket();
          const link = newLink(sock);
          const hello = link.request(link.nextSeq(), Buffer.alloc(1));
          const seqs = replies.map(() => {
            const seq = link.nextSeq();
            link.post(seq, Buffer.alloc(1));
            return seq;
          });
          const doneSeq = link.nextSeq();
          const done = link.request(doneSeq, Buffer.alloc(1));
          done.catch(() => undefined);
          assert.equal(sock.writes, replies.length + 2);

          const stream = Buffer.concat([
            encodeWelcome(1, { committed: 7, state: 0 }),
            ...replies.map((r, i) => encodeReply(seqs[i]!, r)),
            endWithError
              ? encodeFaultReply(MsgType.ERROR, 0, ErrorCode.SHUTTING_DOWN, "bye")
              : encodeAck(doneSeq, 99),
          ]);
          for (const c of split(stream, cuts)) sock.emit("data", c);

          const w = await hello;
          assert.equal(w[0]!.type, MsgType.WELCOME);
          for (const want of replies) {
            const got = link.nextReply();
            assert.notEqual(got, null);
            same(got!, want);
          }
          assert.equal(link.nextReply(), null);
          if (endWithError) {
            await assert.rejects(done, LinkError);
            await assert.rejects(link.replied(), LinkError);
          } else {
            const d = await done;
            assert.equal(d[0]!.payload.readUInt32BE(0), 99);
          }
        },
      ),
      { numRuns: 500, seed: 10 },
    );
  });

  it("replied() wakes up on the next reply, and on a broken link", async () => {
    const sock = new FakeSocket();
    const link = newLink(sock);
    link.post(1, Buffer.alloc(1));
    link.post(2, Buffer.alloc(1));
    const ack = encodeAck(1, 5);
    const woke = link.replied();
    sock.emit("data", ack.subarray(0, 7)); // half a frame: nothing yet
    assert.equal(link.nextReply(), null);
    sock.emit("data", ack.subarray(7));
    await woke;
    assert.deepEqual(link.nextReply() !== null, true);
    const broken = link.replied();
    sock.emit("data", encodeFrame(0x7f, 2, Buffer.alloc(0))); // not a known type
    await assert.rejects(broken, LinkError);
  });
});
