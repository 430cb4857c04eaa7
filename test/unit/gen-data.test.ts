import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import {
  agencyChunks,
  csvField,
  csvLine,
  type DatasetOptions,
  generateAgencyFile,
  generateDataset,
  parseCli,
  WINNING_NUMBER,
} from "../../tools/gen-data.js";

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), "../../tools/gen-data.js");

let root = "";
let dirCount = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "gen-data-test-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function freshDir(): string {
  dirCount++;
  return join(root, `d${dirCount}`);
}

async function generate(o: Omit<DatasetOptions, "out">) {
  const out = freshDir();
  const result = await generateDataset({ ...o, out });
  return { out, result };
}

async function files(dir: string): Promise<Map<string, Buffer>> {
  const names = (await readdir(dir)).sort();
  const m = new Map<string, Buffer>();
  for (const n of names) m.set(n, await readFile(join(dir, n)));
  return m;
}

/**
 * Reads every agency file of `dir` back with Python's csv module and reports per file: rows,
 * winners, invalid rows (not 5 fields, bad document/date/number), whether writing the parsed
 * rows again with csv.writer(QUOTE_MINIMAL) and the given line ending reproduces the file byte
 * for byte, and a few content statistics.
 */
const PY_CHECK = String.raw`
import csv, datetime, io, json, os, re, sys
d, eol = sys.argv[1], sys.argv[2]
lo, hi = datetime.date(1940, 1, 1), datetime.date(2006, 12, 31)
docs = set()
total_docs = 0
out = []
names = sorted(os.listdir(d), key=lambda n: int(n[len("agency-"):-len(".csv")]))
for name in names:
    path = os.path.join(d, name)
    raw = open(path, "rb").read()
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    again = []
    for r in rows:
        buf = io.StringIO()
        csv.writer(buf, quoting=csv.QUOTE_MINIMAL).writerow(r)  # default dialect: CRLF
        line = buf.getvalue()
        again.append(line[:-2] + eol)
    st = dict(file=name, rows=len(rows), winners=0, bad=0, lead0=0, nonascii=0, apos=0,
              space=0, same="".join(again).encode("utf-8") == raw)
    for r in rows:
        ok = (len(r) == 5 and re.fullmatch(r"\d{8}", r[2]) is not None
              and re.fullmatch(r"\d{4}-\d{2}-\d{2}", r[3]) is not None
              and re.fullmatch(r"0|[1-9]\d{0,3}", r[4]) is not None
              and r[0] != "" and r[1] != "")
        if ok:
            try:
                ok = lo <= datetime.date.fromisoformat(r[3]) <= hi
            except ValueError:
                ok = False
        if not ok:
            st["bad"] += 1
            continue
        total_docs += 1
        docs.add(r[2])
        st["winners"] += r[4] == "7574"
        st["lead0"] += r[2][0] == "0"
        st["nonascii"] += any(ord(c) > 127 for c in r[0] + r[1])
        st["apos"] += "'" in r[1]
        st["space"] += " " in r[0]
    out.append(st)
print(json.dumps(dict(files=out, docs=total_docs, unique_docs=len(docs))))
`;

interface PyFile {
  file: string;
  rows: number;
  winners: number;
  bad: number;
  lead0: number;
  nonascii: number;
  apos: number;
  space: number;
  same: boolean;
}

function pyCheck(
  dir: string,
  eol: "\n" | "\r\n",
): {
  files: PyFile[];
  docs: number;
  unique_docs: number;
} {
  const r = spawnSync("python3", ["-c", PY_CHECK, dir, eol], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

describe("gen-data: determinism", () => {
  it("same seed and options give byte-identical files", async () => {
    const o = { agencies: 3, bets: 3000, winners: [1, 5, 0], seed: 42, tricky: 0.05 };
    const a = await files((await generate(o)).out);
    const b = await files((await generate(o)).out);
    assert.deepEqual([...a.keys()], ["agency-1.csv", "agency-2.csv", "agency-3.csv"]);
    for (const [name, bytes] of a) assert.ok(bytes.equals(b.get(name)!), name);
  });

  it("a different seed gives different files", async () => {
    const a = await files((await generate({ agencies: 2, bets: 500, seed: 1 })).out);
    const b = await files((await generate({ agencies: 2, bets: 500, seed: 2 })).out);
    for (const [name, bytes] of a) assert.ok(!bytes.equals(b.get(name)!), name);
  });

  it("different agencies get different streams", async () => {
    const a = await files((await generate({ agencies: 2, bets: 500, winners: 0 })).out);
    const rows1 = a.get("agency-1.csv")!.toString("utf8").split("\n");
    const rows2 = a.get("agency-2.csv")!.toString("utf8").split("\n");
    const names = (rows: string[]) => rows.map((l) => l.split(",").slice(0, 2).join(","));
    assert.notDeepEqual(names(rows1), names(rows2));
  });

  it("the default seed is stable and the chunks equal the file", async () => {
    const out = freshDir();
    const r = await generateDataset({ out, agencies: 1, bets: 5000, winners: 3 });
    assert.equal(r.seed, 1);
    const chunks = [...agencyChunks({ agency: 1, bets: 5000, winners: 3, documentOffset: 0 })];
    assert.ok(chunks.length > 1);
    for (const c of chunks) assert.ok(c.length <= 64 * 1024);
    const file = await readFile(join(out, "agency-1.csv"));
    assert.ok(Buffer.concat(chunks).equals(file));
  });

  it("changing the winners changes only the number column", async () => {
    const a = await files((await generate({ agencies: 1, bets: 2000, winners: 0 })).out);
    const b = await files((await generate({ agencies: 1, bets: 2000, winners: 40 })).out);
    const strip = (f: Buffer) =>
      f
        .toString("utf8")
        .split("\n")
        .map((l) => l.slice(0, l.lastIndexOf(",")));
    assert.deepEqual(strip(a.get("agency-1.csv")!), strip(b.get("agency-1.csv")!));
  });
});

describe("gen-data: content", () => {
  it("writes exactly the requested winners and reports them", async () => {
    const winners = [0, 1, 2, 3, 100, 1000];
    const { out, result } = await generate({ agencies: 6, bets: 1000, winners, seed: 7 });
    assert.deepEqual(
      result.agencies.map((a) => [a.agency, a.rows, a.winners]),
      winners.map((w, i) => [i + 1, 1000, w]),
    );
    assert.deepEqual(result.total, {
      agencies: 6,
      rows: 6000,
      winners: 1106,
      bytes: result.agencies.reduce((s, a) => s + a.bytes, 0),
    });
    const py = pyCheck(out, "\n");
    assert.deepEqual(
      py.files.map((f) => [f.rows, f.winners, f.bad]),
      winners.map((w) => [1000, w, 0]),
    );
  });

  it("defaults to the course's 2,3,3,2,0 winners pattern", async () => {
    const { result } = await generate({ agencies: 7, bets: 50 });
    assert.deepEqual(
      result.agencies.map((a) => a.winners),
      [2, 3, 3, 2, 0, 2, 3],
    );
  });

  it("rows parse as 5 fields with Python's csv module and re-serialise byte for byte", async () => {
    const { out } = await generate({ agencies: 2, bets: 20_000, seed: 3 });
    const py = pyCheck(out, "\n");
    for (const f of py.files) {
      assert.equal(f.rows, 20_000, f.file);
      assert.equal(f.bad, 0, f.file);
      assert.ok(f.same, `${f.file}: not what Python's csv.writer writes`);
      // realistic names: accents, apostrophes (D'Angelo, O'Connor), two given names
      assert.ok(f.nonascii > 2000, `${f.file}: ${f.nonascii} names with accents`);
      assert.ok(f.apos > 100, `${f.file}: ${f.apos} surnames with apostrophes`);
      assert.ok(f.space > 5000, `${f.file}: ${f.space} compound first names`);
      assert.ok(f.lead0 > 50, `${f.file}: ${f.lead0} documents with a leading zero`);
    }
    assert.equal(py.unique_docs, py.docs, "documents are unique across the dataset");
    const text = await readFile(join(out, "agency-1.csv"), "utf8");
    assert.ok(!text.includes('"'), "realistic names need no quoting");
    assert.ok(!text.includes("\r"));
  });

  it("--tricky names are quoted like Python's QUOTE_MINIMAL (LF and CRLF)", async () => {
    for (const crlf of [false, true]) {
      const { out, result } = await generate({
        agencies: 2,
        bets: 3000,
        winners: [4, 1],
        tricky: 0.2,
        seed: 11,
        crlf,
      });
      const text = await readFile(join(out, "agency-1.csv"), "utf8");
      assert.ok(text.includes('""'), "some quoted quotes");
      const py = pyCheck(out, crlf ? "\r\n" : "\n");
      assert.deepEqual(
        py.files.map((f) => [f.rows, f.winners, f.bad, f.same]),
        [
          [3000, 4, 0, true],
          [3000, 1, 0, true],
        ],
      );
      assert.equal(result.total.rows, 6000);
    }
  });

  it("--crlf ends every line with CRLF, LF by default", async () => {
    const crlf = await files((await generate({ agencies: 1, bets: 1000, crlf: true })).out);
    const lf = await files((await generate({ agencies: 1, bets: 1000 })).out);
    const c = crlf.get("agency-1.csv")!.toString("utf8");
    const l = lf.get("agency-1.csv")!.toString("utf8");
    assert.ok(c.endsWith("\r\n"));
    assert.equal(c.split("\r\n").length - 1, 1000);
    assert.equal(c.split("\n").length - 1, 1000);
    assert.ok(!l.includes("\r"));
    assert.equal(l.split("\n").length - 1, 1000);
    assert.equal(c.replaceAll("\r\n", "\n"), l, "same rows, other line ending");
  });

  it("documents are 8-digit strings, dates valid in 1940..2006, numbers 0..9999", async () => {
    const { out } = await generate({ agencies: 1, bets: 30_000, winners: 5, seed: 5 });
    const text = await readFile(join(out, "agency-1.csv"), "utf8");
    const lines = text.split("\n").slice(0, -1);
    assert.equal(lines.length, 30_000);
    let minDate = "9999";
    let maxDate = "0000";
    for (const line of lines) {
      const [first, last, doc, date, num, ...rest] = line.split(",");
      assert.equal(rest.length, 0, line);
      assert.ok(first && last, line);
      assert.match(doc!, /^\d{8}$/);
      assert.match(date!, /^\d{4}-\d{2}-\d{2}$/);
      const d = new Date(`${date}T00:00:00Z`);
      assert.equal(d.toISOString().slice(0, 10), date, "a real calendar day");
      if (date! < minDate) minDate = date!;
      if (date! > maxDate) maxDate = date!;
      const n = Number(num);
      assert.ok(Number.isInteger(n) && n >= 0 && n <= 9999 && String(n) === num, line);
    }
    assert.ok(minDate >= "1940-01-01" && minDate < "1941-01-01", minDate);
    assert.ok(maxDate <= "2006-12-31" && maxDate > "2006-01-01", maxDate);
    assert.equal(lines.filter((l) => l.endsWith(`,${WINNING_NUMBER}`)).length, 5);
  });

  it("zero bets gives an empty file; winners may equal bets", async () => {
    const { out, result } = await generate({ agencies: 2, bets: [0, 10], winners: [0, 10] });
    assert.equal((await readFile(join(out, "agency-1.csv"))).length, 0);
    assert.equal(result.agencies[1]!.winners, 10);
    const py = pyCheck(out, "\n");
    assert.deepEqual(
      py.files.map((f) => [f.rows, f.winners]),
      [
        [0, 0],
        [10, 10],
      ],
    );
  });

  it("rejects impossible options and leaves no partial file", async () => {
    await assert.rejects(generate({ agencies: 1, bets: 5, winners: 6 }), RangeError);
    await assert.rejects(generate({ agencies: 2, bets: [5], winners: 0 }), RangeError);
    await assert.rejects(generate({ agencies: 1, bets: 100_000_001 }), RangeError);
    const missing = join(root, "no-such-dir", "agency-1.csv");
    await assert.rejects(generateAgencyFile({ path: missing, agency: 1, bets: 10, winners: 0 }));
  });
});

describe("gen-data: csv quoting helpers", () => {
  it("quotes exactly like QUOTE_MINIMAL", () => {
    assert.equal(csvField("D'Angelo"), "D'Angelo");
    assert.equal(csvField("Sáenz Peña"), "Sáenz Peña");
    assert.equal(csvField("a,b"), '"a,b"');
    assert.equal(csvField('say "hi"'), '"say ""hi"""');
    assert.equal(csvField("a\rb"), '"a\rb"');
    assert.equal(csvField("a\nb"), '"a\nb"');
    assert.equal(csvLine(["x", "y,z", ""]), 'x,"y,z",\n');
    assert.equal(csvLine([""], "\r\n"), '""\r\n');
  });
});

describe("gen-data: CLI", () => {
  function run(args: string[]) {
    return spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  }

  it("--help prints the usage and exits 0", () => {
    const r = run(["--help"]);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /Usage: gen-data --out DIR/);
    assert.match(r.stdout, /--winners/);
  });

  it("usage errors exit 2 with a message on stderr and write nothing", () => {
    const out = freshDir();
    for (const args of [
      [],
      ["--out", out, "--bogus"],
      ["--out", out, "--bets", "5", "--winners", "6"],
      ["--out", out, "--agencies", "2", "--winners", "1,2,3"],
      ["--out", out, "--agencies", "0"],
      ["--out", out, "--bets", "-3"],
      ["--out", out, "--bets=-3"],
      ["--out", out, "--bets", "1,,2"],
      ["--out", out, "--seed", "4294967296"],
      ["--out", out, "--tricky", "2"],
      ["--out", out, "extra"],
    ]) {
      const r = run(args);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /^gen-data: .+\nTry 'gen-data --help'\.\n$/);
      assert.equal(r.stdout, "");
    }
    assert.equal(existsSync(out), false, "nothing created");
  });

  it("writes the files and reports rows and winners per agency and in total", async () => {
    const out = freshDir();
    const args = ["--out", out, "--agencies", "3", "--bets", "200,300,400", "--seed", "9"];
    const r = run([...args, "--winners", "2,0,7", "--crlf"]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 4);
    assert.match(lines[0]!, /^agency 1: 200 rows, 2 winners -> .*agency-1\.csv/);
    assert.match(lines[1]!, /^agency 2: 300 rows, 0 winners -> /);
    assert.match(lines[2]!, /^agency 3: 400 rows, 7 winners -> /);
    assert.match(lines[3]!, /^total: 3 agencies, 900 rows, 9 winners, /);
    const py = pyCheck(out, "\r\n");
    assert.deepEqual(
      py.files.map((f) => [f.rows, f.winners, f.bad, f.same]),
      [
        [200, 2, 0, true],
        [300, 0, 0, true],
        [400, 7, 0, true],
      ],
    );
    // the library gives the same bytes as the CLI
    const lib = await generate({
      agencies: 3,
      bets: [200, 300, 400],
      winners: [2, 0, 7],
      seed: 9,
      crlf: true,
    });
    const a = await files(out);
    const b = await files(lib.out);
    for (const [name, bytes] of a) assert.ok(bytes.equals(b.get(name)!), name);
  });

  it("--json prints a machine-readable summary", () => {
    const out = freshDir();
    const r = run(["--out", out, "--agencies", "2", "--bets", "100", "--winners", "3", "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(s.seed, 1);
    assert.equal(s.crlf, false);
    assert.deepEqual(
      s.agencies.map((a: { agency: number; rows: number; winners: number }) => [
        a.agency,
        a.rows,
        a.winners,
      ]),
      [
        [1, 100, 3],
        [2, 100, 3],
      ],
    );
    assert.equal(s.total.rows, 200);
    assert.equal(s.total.winners, 6);
    assert.equal(typeof s.seconds, "number");
  });

  it("parseCli applies the defaults", () => {
    const c = parseCli(["--out", "x"]);
    assert.deepEqual(c.dataset, {
      out: "x",
      agencies: 5,
      bets: 10000,
      winners: undefined,
      seed: 1,
      crlf: false,
      tricky: 0,
    });
  });

  it("--course: the course's sizes, repeated past five agencies; not with --bets", () => {
    assert.deepEqual(
      parseCli(["--out", "x", "--course", "--agencies", "7"]).dataset.bets,
      [26936, 25518, 16014, 9238, 991, 26936, 25518],
    );
    assert.throws(() => parseCli(["--out", "x", "--course", "--bets", "5"]), /--course and --bets/);
  });
});
