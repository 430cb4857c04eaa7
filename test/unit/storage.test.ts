// Storage: the course's store_bets / load_bets / has_won over a CSV file byte-compatible with
// Python's csv module (both ways), the server's row encoder, group commit, and crash recovery.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  encodeBatchCsv,
  FileStore,
  GroupCommitFile,
  has_won,
  load_bets,
  maxRowsSize,
  openAppend,
  SegmentAllocator,
  STORAGE_COLUMNS,
  scanBets,
  store_bets,
} from "../../server/src/storage/index.js";
import type { Bet } from "../../shared/src/bet.js";
import { encodeCsvRow } from "../../shared/src/csv.js";
import { Logger, type Sink } from "../../shared/src/log.js";
import { awkwardBets, bet } from "../lib/bets.js";
import { batchPayload } from "../lib/codec.js";
import { python } from "../lib/python.js";

const dir = mkdtempSync(join(tmpdir(), "quiniela-storage-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tmpFile = (name = "bets.csv") => join(dir, `${n++}-${name}`);

/** The row Python's store_bets would write: agency and number as ints. */
function pyRow(b: Bet): Array<string | number> {
  return [b.agency, b.first_name, b.last_name, b.document, b.birthdate, b.number];
}

function pythonWriteBets(path: string, bets: Bet[]): void {
  python(
    `
import csv, json, sys
a = json.load(sys.stdin)
with open(a["path"], "a+", newline="", encoding="utf-8") as f:
    w = csv.writer(f, quoting=csv.QUOTE_MINIMAL)
    for row in a["rows"]:
        w.writerow(row)
`,
    { path, rows: bets.map(pyRow) },
  );
}

function pythonReadRows(path: string): string[][] {
  return JSON.parse(
    python(
      `
import csv, json, sys
with open(json.load(sys.stdin), "r", newline="", encoding="utf-8") as f:
    json.dump(list(csv.reader(f)), sys.stdout)
`,
      path,
    ),
  ) as string[][];
}

const strRow = (b: Bet) => [
  String(b.agency),
  b.first_name,
  b.last_name,
  b.document,
  b.birthdate,
  String(b.number),
];

/** load_bets yields lazily decoded bets: compare their values as plain objects. */
async function loadAll(path: string): Promise<Bet[]> {
  const out: Bet[] = [];
  for await (const b of load_bets(path)) {
    const { agency, first_name, last_name, document, birthdate, number } = b;
    out.push({ agency, first_name, last_name, document, birthdate, number });
  }
  return out;
}

const BETS: Bet[] = awkwardBets((i) => (i % 5) + 1);

class Capture implements Sink {
  text = "";
  write(t: string): void {
    this.text += t;
  }
  flush(): void {}
}

describe("store_bets / load_bets / has_won", () => {
  it("the columns are the course's", () => {
    assert.deepEqual(
      STORAGE_COLUMNS,
      "agency,first_name,last_name,document,birthdate,number".split(","),
    );
  });

  it("store_bets appends, load_bets streams everything back in order", async () => {
    const path = tmpFile();
    await store_bets(BETS.slice(0, 4), path);
    await store_bets(BETS.slice(4), path);
    await store_bets([], path);
    assert.deepEqual(await loadAll(path), BETS);
  });

  it("the file's bytes are what Python's csv.writer writes (CRLF rows)", async () => {
    const ours = tmpFile("ours.csv");
    const theirs = tmpFile("py.csv");
    await store_bets(BETS, ours);
    pythonWriteBets(theirs, BETS);
    const a = readFileSync(ours);
    const b = readFileSync(theirs);
    assert.equal(a.toString("utf8"), b.toString("utf8"));
    assert.ok(a.equals(b));
    assert.ok(a.toString("latin1").endsWith("\r\n"));
  });

  it("Python's csv.reader reads our file back identically", async () => {
    const path = tmpFile();
    await store_bets(BETS, path);
    assert.deepEqual(pythonReadRows(path), BETS.map(strRow));
  });

  it("load_bets reads a file written by Python", async () => {
    const path = tmpFile();
    pythonWriteBets(path, BETS);
    assert.deepEqual(await loadAll(path), BETS);
  });

  it("a large file crosses read-chunk boundaries (with multi-line rows) intact", async () => {
    const path = tmpFile();
    const many: Bet[] = [];
    for (let i = 0; i < 20_000; i++) {
      const b = BETS[i % BETS.length]!;
      many.push({ ...b, document: String(i), number: i });
    }
    await store_bets(many, path);
    assert.ok(statSync(path).size > 256 * 1024 * 2);
    assert.deepEqual(await loadAll(path), many);
    assert.deepEqual(pythonReadRows(path), many.map(strRow));
  });

  it("load_bets never reports an unterminated (torn) last row", async () => {
    const path = tmpFile();
    await store_bets(BETS.slice(0, 2), path);
    writeFileSync(path, "3,Ana,Lo", { flag: "a" });
    assert.deepEqual(await loadAll(path), BETS.slice(0, 2));
  });

  it("has_won is number == 7574; the stored winners are found", async () => {
    const path = tmpFile();
    await store_bets(BETS, path);
    const winners: Bet[] = [];
    for await (const b of load_bets(path)) if (has_won(b)) winners.push(b);
    assert.deepEqual(
      winners.map((b) => [b.agency, b.document]),
      [
        [1, "30904465"],
        [5, "22"],
        [4, "8"],
      ],
    );
  });
});

/** A BATCH payload of these bets (number as given), built by hand as the wire carries it. */
function payloadOf(first: number, bets: Array<{ b: Bet; numberText: string }>): Buffer {
  return batchPayload(
    first,
    bets.map(({ b, numberText }) =>
      [b.first_name, b.last_name, b.document, b.birthdate, numberText].map((s) => Buffer.from(s)),
    ),
  );
}

/** Encodes the bets with encodeBatchCsv (at an offset, bounded) and returns the rows. */
function encodeRows(agency: number, bets: Array<{ b: Bet; numberText: string }>): Buffer {
  const p = payloadOf(0, bets);
  const prefix = Buffer.from(`${agency},`);
  const room = maxRowsSize(p.length, bets.length, prefix.length);
  const out = Buffer.alloc(room + 10, 0xee);
  const end = encodeBatchCsv(p, out, 5, prefix, 20991231);
  assert.ok(end >= 5, "the batch is accepted");
  assert.ok(end - 5 <= room, "within maxRowsSize");
  assert.equal(out[4], 0xee, "nothing written before pos");
  assert.equal(out[end], 0xee, "nothing written after the returned position");
  return out.subarray(5, end);
}

const one = (b: Bet, numberText = String(b.number)) => encodeRows(b.agency, [{ b, numberText }]);

describe("encodeBatchCsv", () => {
  it("produces the same bytes as encodeCsvRow for the same bets, one by one and as one batch", () => {
    for (const b of BETS) assert.deepEqual(one(b), encodeCsvRow(strRow(b)), JSON.stringify(b));
    const same = BETS.map((b) => ({ ...b, agency: 3 }));
    assert.deepEqual(
      encodeRows(
        3,
        same.map((b) => ({ b, numberText: String(b.number) })),
      ),
      Buffer.concat(same.map((b) => encodeCsvRow(strRow(b)))),
    );
  });

  it("normalizes the number as Python's int would ('0042' -> '42', '0000' -> '0')", () => {
    const b = bet(7, "A", "B", "00012", "2000-01-01", 42);
    assert.equal(one(b, "0042").toString(), "7,A,B,00012,2000-01-01,42\r\n");
    assert.equal(one({ ...b, number: 0 }, "0000").toString(), "7,A,B,00012,2000-01-01,0\r\n");
    assert.equal(one({ ...b, number: 0 }, "0").toString(), "7,A,B,00012,2000-01-01,0\r\n");
    assert.equal(
      one({ ...b, number: 99999999 }, "99999999").toString(),
      "7,A,B,00012,2000-01-01,99999999\r\n",
    );
    assert.equal(one({ ...b, number: 100 }, "00100").toString(), "7,A,B,00012,2000-01-01,100\r\n");
  });

  it("worst case row (all quotes) fits maxRowsSize", () => {
    const q = '"'.repeat(255);
    const b = bet(4294967295, q, q, "1234567890", "2000-01-01", 99999999);
    assert.deepEqual(one(b), encodeCsvRow(strRow(b)));
  });

  it("refuses (-1) what the bet-by-bet check refuses", () => {
    const ok = bet(1, "A", "B", "1", "2000-02-29", 5);
    const cases: Array<[string, Bet, string?]> = [
      ["empty first name", { ...ok, first_name: "" }],
      ["document with a letter", { ...ok, document: "12a" }],
      ["document of 11 digits", { ...ok, document: "12345678901" }],
      ["29 February of a common year", { ...ok, birthdate: "2001-02-29" }],
      ["month 13", { ...ok, birthdate: "2000-13-01" }],
      ["before 1900", { ...ok, birthdate: "1899-12-31" }],
      ["after today", { ...ok, birthdate: "2099-01-01" }],
      ["slashes", { ...ok, birthdate: "2000/01/01" }],
      ["number of 9 digits", ok, "123456789"],
      ["number with a sign", ok, "-5"],
    ];
    for (const [what, b, numberText] of cases) {
      const p = payloadOf(0, [
        { b: ok, numberText: "1" },
        { b, numberText: numberText ?? String(b.number) },
      ]);
      const out = Buffer.alloc(maxRowsSize(p.length, 2, 2));
      assert.equal(encodeBatchCsv(p, out, 0, Buffer.from("1,"), 20991231 - 1000000), -1, what);
    }
    const good = payloadOf(0, [{ b: ok, numberText: "5" }]);
    const out = Buffer.alloc(64);
    assert.ok(encodeBatchCsv(good, out, 0, Buffer.from("1,"), 20991231) > 0);
    for (const cut of [0, 5, 6, 8, good.length - 1]) {
      assert.equal(encodeBatchCsv(good.subarray(0, cut), out, 0, Buffer.from("1,"), 20991231), -1);
    }
    assert.equal(
      encodeBatchCsv(Buffer.concat([good, Buffer.from("x")]), out, 0, Buffer.from("1,"), 20991231),
      -1,
    );
  });
});

describe("SegmentAllocator", () => {
  /** Fills the current segment with one row of `bytes` bytes and returns it. */
  const row = (a: SegmentAllocator, bytes: number, lease = true) => {
    const { buf, start } = a.reserve(bytes);
    buf.fill(0x61, start, start + bytes);
    return lease ? a.lease(start + bytes) : a.take(start + bytes);
  };

  it("reuses a full segment once every lease on it is released, and not before", () => {
    const a = new SegmentAllocator(4096, true);
    const r1 = row(a, 3000);
    const r2 = row(a, 1000); // same segment
    assert.equal(r1.buffer, r2.buffer);
    const r3 = row(a, 3000); // the first is full: a new segment
    assert.notEqual(r3.buffer, r1.buffer);
    a.release(r1);
    const r4 = row(a, 3000); // r2 still holds the first: another new one
    assert.notEqual(r4.buffer, r1.buffer);
    a.release(r2);
    const r5 = row(a, 3000); // now the first comes back
    assert.equal(r5.buffer, r1.buffer);
    assert.equal(r3.toString("latin1", 0, 3), "aaa", "rows of other segments untouched");
  });

  it("never reuses segments in take mode (rows of the PostgreSQL store live on in its queue)", () => {
    const a = new SegmentAllocator(4096);
    const seen = new Set<ArrayBufferLike>();
    for (let i = 0; i < 6; i++) {
      const r = row(a, 3000, i % 2 === 0);
      a.release(r);
      assert.ok(!seen.has(r.buffer));
      seen.add(r.buffer);
    }
  });
});

describe("GroupCommitFile", () => {
  it("many concurrent appends resolve, in call order, with fewer syncs than appends", async () => {
    const path = tmpFile();
    const { fh, size } = await openAppend(path, null);
    assert.equal(size, 0);
    const file = new GroupCommitFile(fh, "fdatasync", size);
    const rows: Buffer[] = [];
    const done: Promise<void>[] = [];
    const order: number[] = [];
    for (let i = 0; i < 300; i++) {
      const row = Buffer.from(`${i},row ${i}\r\n`);
      rows.push(row);
      done.push(file.append(row).then(() => void order.push(i)));
      // some appends arrive while a write is in flight, some in the same turn
      if (i % 50 === 49) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(done);
    const expected = Buffer.concat(rows);
    assert.ok(readFileSync(path).equals(expected), "the file holds the appends in call order");
    assert.equal(file.size, expected.length);
    assert.deepEqual(
      order,
      [...order].sort((a, b) => a - b),
      "promises resolve in order",
    );
    assert.ok(file.syncs >= 1);
    assert.ok(file.syncs < 300, `group commit: ${file.syncs} syncs for 300 appends`);
    await file.close();
  });

  it("flush() waits for what was appended; appending to an existing file keeps its bytes", async () => {
    const path = tmpFile();
    writeFileSync(path, "existing\r\n");
    const { fh, size } = await openAppend(path, null);
    const file = new GroupCommitFile(fh, "none", size);
    void file.append(Buffer.from("a\r\n"));
    void file.append(Buffer.from("b\r\n"));
    await file.flush();
    assert.equal(readFileSync(path, "utf8"), "existing\r\na\r\nb\r\n");
    assert.equal(file.size, size + 6);
    await file.flush(); // idle: resolves at once
    await file.close();
  });

  it("large appends (more than 1024 buffers in one group) keep their order", async () => {
    const path = tmpFile();
    const { fh, size } = await openAppend(path, null);
    const file = new GroupCommitFile(fh, "fsync", size);
    const rows = Array.from({ length: 3000 }, (_, i) => Buffer.from(`${i}\r\n`));
    await Promise.all(rows.map((r) => file.append(r)));
    assert.ok(readFileSync(path).equals(Buffer.concat(rows)));
    await file.close();
  });

  it("a failed write (/dev/full) rejects every waiting append and flush, and all later ones", async () => {
    const { fh, size } = await openAppend("/dev/full", null);
    const file = new GroupCommitFile(fh, "fdatasync", size);
    const enospc = { code: "ENOSPC" };
    // queued before the write starts
    const first = [file.append(Buffer.from("1\r\n")), file.append(Buffer.from("2\r\n"))];
    const flushBefore = file.flush();
    await new Promise((r) => setImmediate(r));
    // arriving while the failing write is in flight
    const during = [file.append(Buffer.from("3\r\n")), file.flush()];
    for (const p of [...first, flushBefore, ...during]) await assert.rejects(p, enospc);
    // the file is unusable from now on
    await assert.rejects(file.append(Buffer.from("4\r\n")), enospc);
    await assert.rejects(file.flush(), enospc);
    assert.equal(file.size, 0, "nothing counted as durable");
    await file.close();
  });
});

describe("recovery: scanBets and FileStore.open", () => {
  const complete = [
    "1,Ana,Lopez,1,2000-01-01,7574\r\n",
    '2,"Multi\r\nLine","Quote ""q""",2,2000-01-01,5\r\n',
    "2,Bob,Díaz,3,2000-01-01,6\r\n",
    '3,"a,b",c,4,2000-01-01,7\r\n',
  ].join("");
  const perAgency = [
    [1, 1],
    [2, 2],
    [3, 1],
  ];

  async function openStore(path: string) {
    const sink = new Capture();
    const store = await FileStore.open({
      path,
      sync: "none",
      agencies: 5,
      log: new Logger("DEBUG", sink),
    });
    return { store, sink };
  }

  it("a clean file: every row counted per agency, nothing cut, no warning", async () => {
    const path = tmpFile();
    writeFileSync(path, complete);
    const scan = await scanBets(path);
    assert.equal(scan.rows, 4);
    assert.deepEqual([...scan.perAgency].sort(), perAgency);
    assert.equal(scan.truncatedBytes, 0);
    assert.equal(scan.goodBytes, Buffer.byteLength(complete));
    const { store, sink } = await openStore(path);
    assert.equal(sink.text, "");
    assert.equal(store.recovered.rows, 4);
    await store.close();
    assert.equal(readFileSync(path, "utf8"), complete);
  });

  it("a missing file is empty", async () => {
    const scan = await scanBets(join(dir, "does-not-exist.csv"));
    assert.equal(scan.rows, 0);
    assert.equal(scan.size, 0);
  });

  for (const [name, torn] of [
    ["cut in the middle of a row", "4,Carla,Gó"],
    ["cut inside a quoted field", '4,"Carla\r\nGó'],
    ["cut right after a quoted field's closing quote", '4,"Carla"'],
    ["cut after the CR of the CRLF", "4,Carla,Gómez,5,2000-01-01,7574\r"],
    ["cut after a comma", "4,Carla,"],
    ["a single byte", "4"],
  ] as const) {
    it(`torn last row (${name}) is cut off and not counted`, async () => {
      const path = tmpFile();
      writeFileSync(path, complete + torn);
      const scan = await scanBets(path);
      assert.equal(scan.rows, 4);
      assert.deepEqual([...scan.perAgency].sort(), perAgency);
      assert.equal(scan.goodBytes, Buffer.byteLength(complete));
      assert.equal(scan.truncatedBytes, Buffer.byteLength(torn));

      const { store, sink } = await openStore(path);
      assert.equal(readFileSync(path, "utf8"), complete, "the torn bytes are gone");
      assert.equal(store.recovered.rows, 4);
      assert.deepEqual([...store.recovered.perAgency].sort(), perAgency);
      assert.match(
        sink.text,
        /WARNING +action: storage_recovery \| result: success \|.*repaired_bytes: \d+/,
      );
      // appends after recovery start on a clean row boundary
      await new Promise<void>((res, rej) =>
        store.appendRows(Buffer.from("5,Eva,Ruiz,6,2000-01-01,1\r\n"), (e) => (e ? rej(e) : res())),
      );
      await store.close();
      assert.equal(readFileSync(path, "utf8"), `${complete}5,Eva,Ruiz,6,2000-01-01,1\r\n`);
      assert.deepEqual(pythonReadRows(path).length, 5);
      assert.equal((await loadAll(path)).length, 5);
    });
  }

  it("a torn last row at the end of a large (multi-chunk) file", async () => {
    const path = tmpFile();
    const rows: string[] = [];
    for (let i = 0; i < 15_000; i++)
      rows.push(`${(i % 5) + 1},Nombre ${i},"Ape, ${i}",${i},2000-01-01,${i}\r\n`);
    const good = rows.join("");
    writeFileSync(path, `${good}3,"torn`);
    const scan = await scanBets(path);
    assert.equal(scan.rows, 15_000);
    assert.deepEqual([...scan.perAgency.values()], [3000, 3000, 3000, 3000, 3000]);
    assert.equal(scan.goodBytes, Buffer.byteLength(good));
  });

  it("a malformed complete row is reported as corruption the same way in small and large files", async () => {
    // Only the tail can be torn; a complete non-bet row is corruption wherever it is, and the
    // decision must not depend on where the 256 KiB read chunks fall.
    const good = (i: number) => `1,Ana,Lopez,${30000000 + i},2000-01-01,${i}\r\n`;
    const head = `${good(0)}1,only,five,fields,here\r\n`;
    const small = tmpFile("small.csv");
    const large = tmpFile("large.csv");
    let s = head;
    for (let i = 1; i < 10; i++) s += good(i);
    writeFileSync(small, s);
    const smallText = s;
    for (let i = 10; i < 20_000; i++) s += good(i);
    writeFileSync(large, s);
    const a = await scanBets(small);
    const b = await scanBets(large);
    assert.deepEqual(
      [a.rows, a.goodBytes, a.corruptAt],
      [1, Buffer.byteLength(good(0)), Buffer.byteLength(good(0))],
    );
    assert.deepEqual(
      [b.rows, b.goodBytes, b.corruptAt],
      [a.rows, a.goodBytes, a.corruptAt],
      "same prefix, same decision, whatever the file size",
    );
    await assert.rejects(
      FileStore.open({ path: small, sync: "none", agencies: 5, log: new Logger("ERROR") }),
      (e: Error & { code?: string }) => e.code === "CORRUPT_STORAGE",
    );
    assert.equal(readFileSync(small, "utf8"), smallText, "a corrupt file is left untouched");
  });
});
