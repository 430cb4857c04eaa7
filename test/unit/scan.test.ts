// The agency's one-pass scanner (client/src/scan.ts) on hand-written files: what it sends (as
// the server decodes it), which rows it reports with which line and code, where batches start
// and end in the file, resuming mid-file, records longer than its buffer, bytes that are not
// UTF-8. test/property/scan.property.test.ts compares it with the old path on generated files.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { BetScanner, Step } from "../../client/src/scan.js";
import { validateBetFields } from "../../shared/src/bet.js";
import { errorName, isFault } from "../../shared/src/errors.js";
import { MAX_FRAME, MsgType } from "../../shared/src/protocol/frame.js";
import { type BatchView, decodeBatch } from "../../shared/src/protocol/messages.js";
import { MIXED_ROWS } from "../lib/bets.js";

const TODAY = 20240615;
const dir = mkdtempSync(join(tmpdir(), "quiniela-scan-unit-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;

interface Sent {
  bets: string[][];
  frameBytes: number;
  startOffset: number;
  startLine: number;
  endOffset: number;
  endLine: number;
}

async function scan(
  content: string | Buffer,
  opts: { maxAmount?: number; chunk?: number; offset?: number; line?: number; skip?: number } = {},
): Promise<{ batches: Sent[]; invalid: [number, string][] }> {
  const path = join(dir, `f${fileNo++}.csv`);
  writeFileSync(path, content);
  const sc = new BetScanner(opts.maxAmount ?? 100, opts.chunk ?? 256 * 1024);
  const batches: Sent[] = [];
  const invalid: [number, string][] = [];
  let pos = 0;
  const emit = () => {
    if (sc.builder.count === 0) return;
    const frame = sc.builder.build(MsgType.BATCH, 1, pos);
    assert.ok(frame.length <= MAX_FRAME);
    const v = decodeBatch(frame.subarray(12));
    assert.ok(!isFault(v), JSON.stringify(v));
    const view = v as BatchView;
    assert.equal(view.first, pos);
    const bets: string[][] = [];
    for (let b = 0; b < view.count; b++) {
      assert.equal(
        typeof validateBetFields(view.buf, view.starts, view.ends, b * 5, TODAY),
        "number",
      );
      const fields: string[] = [];
      for (let f = 0; f < 5; f++) {
        fields.push(view.buf.toString("utf8", view.starts[b * 5 + f], view.ends[b * 5 + f]));
      }
      bets.push(fields);
    }
    batches.push({
      bets,
      frameBytes: frame.length,
      startOffset: sc.batchStart,
      startLine: sc.batchStartLine,
      endOffset: sc.lastEnd,
      endLine: sc.lastEndLine,
    });
    pos += view.count;
    sc.startBatch();
  };
  await sc.open(
    path,
    { offset: opts.offset ?? 0, line: opts.line ?? 1, skip: opts.skip ?? 0 },
    TODAY,
  );
  try {
    for (;;) {
      const s = sc.step();
      if (s === Step.BATCH) emit();
      else if (s === Step.INVALID) invalid.push([sc.invalidLine, errorName(sc.invalid!.code)]);
      else if (s === Step.NEED_DATA) await sc.fill();
      else break;
    }
    emit();
  } finally {
    sc.close();
  }
  return { batches, invalid };
}

describe("BetScanner", () => {
  it("sends the valid rows and reports the others with their line and code", async () => {
    const r = await scan(`${MIXED_ROWS.join("\r\n")}\r\n`);
    assert.deepEqual(r.invalid, [
      [2, "INVALID_DATE"],
      [3, "INVALID_NUMBER"],
      [5, "MALFORMED"],
      [6, "EMPTY_FIELD"],
    ]);
    assert.deepEqual(
      r.batches.flatMap((b) => b.bets),
      [
        ["Ana", "Pérez", "30111222", "1990-01-01", "7574"],
        ['Fornerón, Juan "el Tano"', "Álvarez", "00000001", "2000-01-01", "0"],
        ["Zoe", "D'Angelo", "30111226", "1980-12-31", "7574"],
      ],
    );
  });

  it("lines count physical lines: CR, LF and CRLF endings, blank lines, breaks inside quotes", async () => {
    const text = [
      "A,B,1,2000-01-01,1\r", // line 1 ends with a lone CR
      "\r\n", // line 2: blank
      '"multi\nline",B,2,2000-01-01,2\n', // lines 3-4
      "bad,row\r\n", // line 5
      "C,D,3,2000-01-01,3\r\n", // line 6
      "\r\n", // line 7: blank
      "E,F,4,2000-02-30,4\n", // line 8: invalid date
      "G,H,5,2000-01-01,5", // line 9, no terminator
    ].join("");
    const r = await scan(text, { maxAmount: 2 });
    assert.deepEqual(r.invalid, [
      [5, "MALFORMED"],
      [8, "INVALID_DATE"],
    ]);
    assert.deepEqual(
      r.batches.map((b) => [b.bets.map((x) => x[2]), b.startLine, b.endLine]),
      [
        [["1", "2"], 1, 5],
        [["3", "5"], 5, 9], // the last line has no terminator: no line after it
      ],
    );
    assert.equal(r.batches[1]!.endOffset, Buffer.byteLength(text));
  });

  it("resumes at a file offset with its line number, skipping committed bets", async () => {
    const text = `${MIXED_ROWS.join("\n")}\n`;
    const offset = Buffer.byteLength(`${MIXED_ROWS.slice(0, 3).join("\n")}\n`);
    const r = await scan(text, { offset, line: 4, skip: 1 });
    assert.deepEqual(r.invalid, [
      [5, "MALFORMED"],
      [6, "EMPTY_FIELD"],
    ]);
    assert.deepEqual(
      r.batches.flatMap((b) => b.bets.map((x) => x[0])),
      ["Zoe"],
    );
    // the skipped bet moved the batch's start past it
    assert.equal(
      r.batches[0]!.startOffset,
      Buffer.byteLength(`${MIXED_ROWS.slice(0, 4).join("\n")}\n`),
    );
    assert.equal(r.batches[0]!.startLine, 5);
  });

  it("a record longer than the read buffer (a huge quoted field) is read whole", async () => {
    const huge = `"${"x".repeat(3000)}\n${"y".repeat(3000)}"`;
    const text = `A,B,1,2000-01-01,1\n${huge},B,2,2000-01-01,2\nC,D,3,2000-01-01,3\n`;
    const r = await scan(text, { chunk: 1024 });
    assert.deepEqual(r.invalid, [[2, "INVALID_NAME"]]);
    assert.deepEqual(
      r.batches.flatMap((b) => b.bets.map((x) => x[2])),
      ["1", "3"],
    );
    assert.equal(r.batches[0]!.endLine, 5);
  });

  it("bytes that are not UTF-8 make their row invalid, and only it", async () => {
    const text = Buffer.concat([
      Buffer.from("A,B,1,2000-01-01,1\n"),
      Buffer.from("An"),
      Buffer.from([0xff]),
      Buffer.from("a,B,2,2000-01-01,2\n"),
      Buffer.from("Nú,B,3,2000-01-01,3\n"),
    ]);
    for (const chunk of [16, 1024]) {
      const r = await scan(text, { chunk });
      assert.deepEqual(r.invalid, [[2, "INVALID_NAME"]]);
      assert.deepEqual(
        r.batches.flatMap((b) => b.bets.map((x) => x[0])),
        ["A", "Nú"],
      );
    }
  });

  it("closes a frame by size before 8192 bytes, at batch.maxAmount otherwise", async () => {
    const fat = `${"n".repeat(255)},${"a".repeat(255)},1234567890,2000-01-01,12345678\n`;
    const r = await scan(fat.repeat(40), { maxAmount: 100 });
    // 18 + k * (5 + 538) <= 8192: 15 bets per frame
    assert.deepEqual(
      r.batches.map((b) => b.bets.length),
      [15, 15, 10],
    );
    for (const b of r.batches) assert.ok(b.frameBytes <= MAX_FRAME);
    const thin = await scan("A,B,1,2000-01-01,1\n".repeat(250), { maxAmount: 100 });
    assert.deepEqual(
      thin.batches.map((b) => b.bets.length),
      [100, 100, 50],
    );
  });

  it("the limits: 255-byte names, 10-digit documents, 8-digit numbers, today", async () => {
    const ok = [
      `${"x".repeat(255)},${"ñ".repeat(127)}x,0123456789,1900-01-01,12345678`,
      "A,B,1,2024-06-15,0",
      "A,B,1,2024-02-29,1",
    ];
    const bad = [
      [`${"x".repeat(256)},B,1,2000-01-01,1`, "INVALID_NAME"],
      ["A,B,12345678901,2000-01-01,1", "INVALID_DOCUMENT"],
      ["A,B,1,2000-01-01,123456789", "INVALID_NUMBER"],
      ["A,B,1,2024-06-16,1", "FUTURE_DATE"],
      ["A,B,1,1899-12-31,1", "INVALID_DATE"],
      ["A,B,1,2023-02-29,1", "INVALID_DATE"],
      ["A,B,1:,2000-01-01,1", "INVALID_DOCUMENT"],
      ["A,B,1,2000-01-1/,1", "INVALID_DATE"],
    ];
    const r = await scan(`${[...ok, ...bad.map((b) => b[0])].join("\n")}\n`);
    assert.equal(r.batches.flatMap((b) => b.bets).length, ok.length);
    assert.deepEqual(
      r.invalid,
      bad.map((b, i) => [ok.length + i + 1, b[1]]),
    );
  });
});
