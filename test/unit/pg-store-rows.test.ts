// The PostgreSQL store's binary COPY encoder: dates as days since 2000-01-01 (checked against
// Date.UTC over every day from 1900 to 2100) and the exact tuple layout.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { daysFromCivil, encodeBatchBinary } from "../../server/src/storage/pg-rows.js";
import { SegmentAllocator } from "../../server/src/storage/segments.js";
import { isFault } from "../../shared/src/errors.js";
import { MsgType } from "../../shared/src/protocol/frame.js";
import { BatchBuilder, decodeBatch } from "../../shared/src/protocol/messages.js";

describe("binary COPY rows", () => {
  it("daysFromCivil agrees with Date.UTC for every day from 1900 to 2100", () => {
    for (let t = Date.UTC(1900, 0, 1); t <= Date.UTC(2100, 11, 31); t += 86_400_000) {
      const d = new Date(t);
      assert.equal(
        daysFromCivil(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()),
        t / 86_400_000,
      );
    }
  });

  it("a tuple: 6 fields; agency, date (days since 2000-01-01) and number as int4, text as sent", () => {
    const b = new BatchBuilder();
    b.addStrings(["Fornerón", 'O\'Brien, "x"', "00012", "1999-12-31", "0042"]);
    b.addStrings(["A", "B", "7", "2000-01-02", "7574"]);
    const view = decodeBatch(Buffer.from(b.build(MsgType.BATCH, 1, 0).subarray(12)));
    assert.ok(!isFault(view));
    const out = encodeBatchBinary(new SegmentAllocator(4096), 12, view, [42, 7574]);
    let p = 0;
    const int16 = () => {
      const v = out.readInt16BE(p);
      p += 2;
      return v;
    };
    const int32 = () => {
      const v = out.readInt32BE(p);
      p += 4;
      return v;
    };
    const field = () => {
      const n = int32();
      const v = out.subarray(p, p + n);
      p += n;
      return v;
    };
    const tuples: unknown[][] = [];
    while (p < out.length) {
      assert.equal(int16(), 6);
      tuples.push([
        field().readInt32BE(0),
        field().toString("utf8"),
        field().toString("utf8"),
        field().toString("latin1"),
        field().readInt32BE(0),
        field().readInt32BE(0),
      ]);
    }
    assert.deepEqual(tuples, [
      [12, "Fornerón", 'O\'Brien, "x"', "00012", -1, 42],
      [12, "A", "B", "7", 1, 7574],
    ]);
  });
});
