// CSV over bytes against python3's csv module: the writer must produce the bytes of
// csv.writer(quoting=QUOTE_MINIMAL) and the reader must read what Python writes (and what Python
// reads) identically, in any chunking.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { CsvReader, encodeCsvRow, needsQuoting } from "../../shared/src/csv.js";
import { bytewise } from "../lib/codec.js";
import { python } from "../lib/python.js";

const dir = mkdtempSync(join(tmpdir(), "quiniela-csv-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const tmpFile = (name: string) => join(dir, `${fileNo++}-${name}`);

/** Python writes `rows` to a new file (opened with newline=''); returns its bytes. */
function pythonWrite(rows: string[][], lineterminator = "\r\n"): Buffer {
  const path = tmpFile("py.csv");
  python(
    `
import csv, json, sys
a = json.load(sys.stdin)
with open(a["path"], "w", newline="", encoding="utf-8") as f:
    csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator=a["lt"]).writerows(a["rows"])
`,
    { path, rows, lt: lineterminator },
  );
  return readFileSync(path);
}

/** Python's csv.reader over each file's bytes (blank-line [] records dropped). */
function pythonRead(files: Buffer[]): string[][][] {
  const paths = files.map((b) => {
    const p = tmpFile("in.csv");
    writeFileSync(p, b);
    return p;
  });
  const out = python(
    `
import csv, json, sys
res = []
for p in json.load(sys.stdin):
    with open(p, newline="", encoding="utf-8") as f:
        res.append([r for r in csv.reader(f) if r != []])
json.dump(res, sys.stdout)
`,
    paths,
  );
  return JSON.parse(out) as string[][][];
}

interface Rec {
  fields: string[];
  startOffset: number;
  endOffset: number;
  line: number;
  terminated: boolean;
}

function parse(chunks: Buffer[], reader = new CsvReader()): Rec[] {
  const out: Rec[] = [];
  const take = () => {
    for (let rec = reader.next(); rec; rec = reader.next()) out.push(copy(rec));
  };
  const copy = (rec: NonNullable<ReturnType<CsvReader["next"]>>): Rec => {
    const fields: string[] = [];
    for (let f = 0; f < rec.fieldCount; f++) {
      fields.push(rec.bufs[f]!.toString("utf8", rec.starts[f], rec.ends[f]));
    }
    return {
      fields,
      startOffset: rec.startOffset,
      endOffset: rec.endOffset,
      line: rec.line,
      terminated: rec.terminated,
    };
  };
  for (const c of chunks) {
    reader.feed(c);
    take();
  }
  for (let rec = reader.end(); rec; rec = reader.end()) out.push(copy(rec));
  return out;
}

const rowsOf = (recs: Rec[]) => recs.map((r) => r.fields);

/** Every cut of `bytes` into two chunks parses to `want`. */
function assertEveryCut(bytes: Buffer, want: Rec[]): void {
  for (let cut = 1; cut < bytes.length; cut++) {
    assert.deepEqual(parse([bytes.subarray(0, cut), bytes.subarray(cut)]), want, `split at ${cut}`);
  }
}

const TRICKY_ROWS: string[][] = [
  ["plain", "row", "30904465", "1999-03-17", "7574"],
  ["a,b", "c", "d"],
  ['say "hi"', '"', '""', 'x"'],
  ["line\nbreak", "cr\ronly", "crlf\r\ninside", "\n", "\r", "\r\n"],
  ["Fornerón", "Álvarez", "Ñandú", "Müller", "😀", "👩‍👩‍👧"],
  [" leading", "trailing ", "  both  ", " ", "\t"],
  ["", "", ""],
  ["", "x"],
  ["x", ""],
  ["a;b", "c|d", "e:f", "g'h", "#"],
  ['",\r\n', 'a""b', ",,,", '"quoted"'],
  ["=1+2", "-3", "@x", "%"],
  ["comma, at end,", ",start", "mid,dle"],
  [],
];

describe("encodeCsvRow writes what Python's csv.writer writes", () => {
  it("a fixed list of tricky rows, byte for byte", () => {
    const ours = Buffer.concat(TRICKY_ROWS.map((r) => encodeCsvRow(r)));
    assert.equal(ours.toString("utf8"), pythonWrite(TRICKY_ROWS).toString("utf8"));
    assert.deepEqual(ours, pythonWrite(TRICKY_ROWS));
  });

  it("one row of a single empty field is written as '\"\"' (as Python does)", () => {
    // Python writes `""\r\n` so that the row is not read back as a blank (skipped) line.
    const py = pythonWrite([[""]]);
    assert.equal(py.toString("utf8"), '""\r\n');
    assert.equal(encodeCsvRow([""]).toString("utf8"), py.toString("utf8"));
  });

  it("generated rows (fast-check) match byte for byte", () => {
    const piece = fc.oneof(
      fc.constantFrom(",", '"', "\r", "\n", "\r\n", " ", "á", "😀", ";", "|", ":", "'", "\t"),
      fc.string({ unit: "grapheme-ascii", maxLength: 5 }),
      fc.string({ unit: "binary", maxLength: 3 }),
    );
    const field = fc.array(piece, { maxLength: 8 }).map((p) => p.join(""));
    // rows of one empty field are covered (and currently failing) in the test above
    const row = fc.array(field, { maxLength: 7 }).filter((r) => !(r.length === 1 && r[0] === ""));
    const rows = fc.sample(fc.array(row, { minLength: 1, maxLength: 30 }), {
      numRuns: 60,
      seed: 4242,
    });
    const flat = rows.flat();
    const ours = Buffer.concat(flat.map((r) => encodeCsvRow(r)));
    const py = pythonWrite(flat);
    if (!ours.equals(py)) {
      // find the first differing row for a readable failure
      for (const r of flat) {
        const single = pythonWrite([r]);
        assert.equal(
          JSON.stringify(encodeCsvRow(r).toString("utf8")),
          JSON.stringify(single.toString("utf8")),
          JSON.stringify(r),
        );
      }
    }
    assert.ok(ours.equals(py));
  });

  it('needsQuoting is true exactly for , " CR LF', () => {
    for (let b = 0; b < 256; b++) {
      const want = b === 0x2c || b === 0x22 || b === 0x0d || b === 0x0a;
      assert.equal(needsQuoting(Buffer.from([b]), 0, 1), want, `byte ${b}`);
    }
  });
});

describe("CsvReader reads Python-written files", () => {
  const pyRows = TRICKY_ROWS.filter((r) => r.length > 0);

  it("CRLF (Python's default): whole, byte by byte, and split at every point", () => {
    const bytes = pythonWrite(pyRows);
    const [pyRead] = pythonRead([bytes]);
    assert.deepEqual(pyRead, pyRows, "sanity: Python reads its own file back");
    assert.deepEqual(rowsOf(parse([bytes])), pyRows);
    assert.deepEqual(rowsOf(parse(bytewise(bytes))), pyRows);
    assertEveryCut(bytes, parse([bytes]));
  });

  it("split into three chunks at many point pairs", () => {
    const bytes = pythonWrite(pyRows.slice(0, 6));
    const whole = parse([bytes]);
    for (let a = 1; a < bytes.length; a += 3) {
      for (let b = a + 1; b < bytes.length; b += 5) {
        const r = parse([bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)]);
        assert.deepEqual(r, whole, `split at ${a}, ${b}`);
      }
    }
  });

  for (const [name, lt] of [
    ["LF", "\n"],
    ["CR", "\r"],
  ] as const) {
    it(`${name} line endings`, () => {
      // Python 3.11 quotes only the characters of its own line terminator: keep the other one out
      const other = lt === "\n" ? "\r" : "\n";
      const rows = pyRows.map((r) => r.map((f) => f.split(other).join("_")));
      const bytes = pythonWrite(rows, lt);
      const [pyRead] = pythonRead([bytes]);
      assert.deepEqual(rowsOf(parse([bytes])), pyRead);
      assert.deepEqual(rowsOf(parse([bytes])), rows);
      assertEveryCut(bytes, parse([bytes]));
    });
  }

  it("a large file of generated rows round-trips through Python and back", () => {
    const rows: string[][] = [];
    for (let i = 0; i < 5000; i++) {
      rows.push([
        String(i % 7),
        `Nombre ${i}${i % 3 === 0 ? ", hijo" : ""}`,
        i % 5 === 0 ? `Ape"llido\n${i}` : "Pérez",
        String(30000000 + i),
        "1999-03-17",
        String(i),
      ]);
    }
    const bytes = pythonWrite(rows);
    assert.deepEqual(bytes, Buffer.concat(rows.map((r) => encodeCsvRow(r))));
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 997) chunks.push(bytes.subarray(i, i + 997));
    assert.deepEqual(rowsOf(parse(chunks)), rows);
  });
});

describe("CsvReader line handling", () => {
  it("blank lines (LF, CRLF, CR) are skipped, as Python yields [] for them", () => {
    const bytes = Buffer.from("a,b\r\n\r\n\nc,d\n\r\re,f\r\n\n");
    const want = [
      ["a", "b"],
      ["c", "d"],
      ["e", "f"],
    ];
    assert.deepEqual(rowsOf(parse([bytes])), want);
    assert.deepEqual(rowsOf(parse(bytewise(bytes))), want);
    assert.deepEqual(pythonRead([bytes])[0], want);
  });

  it("a last line without terminator comes out of end()", () => {
    const r = new CsvReader();
    r.feed(Buffer.from("a,b\r\nc,d"));
    const first = r.next();
    assert.equal(first?.fieldCount, 2);
    assert.equal(r.next(), null);
    assert.equal(r.pendingBytes, 3);
    const last = r.end();
    assert.ok(last);
    assert.equal(last.terminated, false);
    assert.equal(last.fieldCount, 2);
    assert.equal(last.bufs[1]!.toString("utf8", last.starts[1], last.ends[1]), "d");
    assert.equal(r.end(), null);
  });

  it("unterminated endings match Python: trailing comma, open quote, quote then EOF", () => {
    const inputs = ["a,b\r\nc,", 'a\r\n"open, quote', 'x,"closed"', "x,y\r", '"a""b"', "lone"];
    const py = pythonRead(inputs.map((s) => Buffer.from(s)));
    inputs.forEach((s, i) => {
      const b = Buffer.from(s);
      assert.deepEqual(rowsOf(parse([b])), py[i], JSON.stringify(s));
      assert.deepEqual(rowsOf(parse(bytewise(b))), py[i], `${JSON.stringify(s)} byte by byte`);
    });
  });

  it("startOffset, endOffset and line of every record", () => {
    const text = 'a,b\r\n"x\r\ny",z\n\nlast,"q""q"\r\r\nend';
    const bytes = Buffer.from(text);
    const want = [
      { fields: ["a", "b"], startOffset: 0, endOffset: 5, line: 1, terminated: true },
      { fields: ["x\r\ny", "z"], startOffset: 5, endOffset: 14, line: 2, terminated: true },
      // a lone CR ends the record; the CR LF after it is a blank line
      { fields: ["last", 'q"q'], startOffset: 15, endOffset: 27, line: 5, terminated: true },
      { fields: ["end"], startOffset: 29, endOffset: 32, line: 7, terminated: false },
    ];
    assert.equal(bytes.length, 32);
    assert.deepEqual(parse([bytes]), want);
    assert.deepEqual(parse(bytewise(bytes)), want);
    assertEveryCut(bytes, want);
  });

  it("offsets are absolute with a starting offset and line (resume)", () => {
    const r = new CsvReader(1000, 50);
    const recs = parse([Buffer.from("a\r\nb\n")], r);
    assert.deepEqual(
      recs.map((x) => [x.startOffset, x.endOffset, x.line]),
      [
        [1000, 1003, 50],
        [1003, 1005, 51],
      ],
    );
    assert.equal(r.offset, 1005);
  });

  it("resetAt reads on from a position of the caller's buffer, with its offset and line", () => {
    const bytes = Buffer.from('skip me\na,b\r\n"x\ny",z\nlast');
    const r = new CsvReader();
    r.resetAt(bytes, 8, 5000, 40); // bytes[8] is at file offset 5008, on line 40
    const first = r.next()!;
    assert.deepEqual([first.startOffset, first.endOffset, first.line], [5008, 5013, 40]);
    assert.equal(r.lineNumber, 41);
    const second = r.next()!;
    assert.deepEqual([second.startOffset, second.line, second.fieldCount], [5013, 41, 2]);
    assert.equal(r.lineNumber, 43);
    assert.equal(r.next(), null);
    const last = r.end()!;
    assert.deepEqual([last.startOffset, last.endOffset, last.line], [5021, 5025, 43]);
    assert.equal(r.offset, 5025);
  });

  it("multi-byte characters split across chunks are reassembled", () => {
    const bytes = Buffer.from("Fornerón,Álvarez,😀\r\n");
    const whole = parse([bytes]);
    assert.deepEqual(rowsOf(whole), [["Fornerón", "Álvarez", "😀"]]);
    assertEveryCut(bytes, whole);
  });

  it("a quoted field larger than the scratch buffer", () => {
    const big = `${"x".repeat(10_000)}\n${'"'.repeat(3000)}`;
    const rows = [["a", big, "b", big]];
    const bytes = pythonWrite(rows);
    assert.deepEqual(rowsOf(parse([bytes])), rows);
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 1000) chunks.push(bytes.subarray(i, i + 1000));
    assert.deepEqual(rowsOf(parse(chunks)), rows);
  });

  it("matches Python's csv.reader on random byte soups of , \" CR LF and text", () => {
    const soup = fc
      .array(fc.constantFrom(",", '"', "\r", "\n", "a", "b", " ", "é"), { maxLength: 40 })
      .map((a) => a.join(""));
    const inputs = fc.sample(soup, { numRuns: 400, seed: 7 });
    const py = pythonRead(inputs.map((s) => Buffer.from(s)));
    inputs.forEach((s, i) => {
      const b = Buffer.from(s);
      assert.deepEqual(rowsOf(parse([b])), py[i], JSON.stringify(s));
      const cut = Math.floor(b.length / 2);
      assert.deepEqual(
        rowsOf(parse([b.subarray(0, cut), b.subarray(cut)])),
        py[i],
        `${JSON.stringify(s)} split`,
      );
    });
  });
});
