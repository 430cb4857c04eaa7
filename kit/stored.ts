// What a lottery stored, checked against what was sent: python3's csv reading of bets.csv
// compared with the agencies' input files (tests), and rows and winners per agency of bets.csv
// or the PostgreSQL tables (tools).

import { spawnSync } from "node:child_process";
import { createReadStream, existsSync } from "node:fs";
import { LOTTERY_WINNER_NUMBER, parseDigits } from "../shared/src/bet.js";
import { CsvReader } from "../shared/src/csv.js";

export interface StoredCheck {
  equal: boolean;
  /** Rows in the stored file. */
  rows: number;
  /** Rows of the inputs. */
  expected: number;
  /** Bets of the inputs missing from the store (multiset difference), and extra stored ones. */
  missing: number;
  extra: number;
  /** A few differing rows, for the failure message. */
  sample: string[];
  /** Per agency (1-based order of `inputs`), the documents of the winning rows of the inputs. */
  winners: string[][];
  /** Per agency, the number of bets of the inputs. */
  bets: number[];
}

const PY_COMPARE = `
import csv, collections, json, sys
stored, inputs, only = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
got = collections.Counter()
rows = 0
try:
    with open(stored, newline='', encoding='utf-8') as f:
        for row in csv.reader(f):
            rows += 1
            if not only or row[0] in only:
                got[tuple(row)] += 1
except FileNotFoundError:
    pass
want = collections.Counter()
winners, bets = [], []
for a, path in enumerate(inputs, 1):
    docs, n = [], 0
    with open(path, newline='', encoding='utf-8') as f:
        for r in csv.reader(f):
            if not r:
                continue
            n += 1
            want[(str(a), r[0], r[1], r[2], r[3], str(int(r[4])))] += 1
            if int(r[4]) == 7574:
                docs.append(r[2])
    winners.append(sorted(docs))
    bets.append(n)
missing = want - got
extra = got - want
sample = ['missing %dx %s' % (c, ','.join(k)) for k, c in list(missing.items())[:3]]
sample += ['extra %dx %s' % (c, ','.join(k)) for k, c in list(extra.items())[:3]]
print(json.dumps({"equal": got == want, "rows": rows, "expected": sum(want.values()),
  "missing": sum(missing.values()), "extra": sum(extra.values()), "sample": sample,
  "winners": winners, "bets": bets}))
`;

/**
 * Reads the stored bets with python3's csv module and compares them, as a multiset of
 * (agency, fields..., int(number)), with the agencies' input files (agency N = inputs[N-1]).
 * `onlyAgencies` restricts the stored rows compared (others, e.g. a test's own agencies, are
 * ignored but still counted in `rows`).
 */
export function compareStored(
  stored: string,
  inputs: readonly string[],
  onlyAgencies: readonly number[] = [],
): StoredCheck {
  const r = spawnSync(
    "python3",
    ["-c", PY_COMPARE, stored, JSON.stringify(inputs), JSON.stringify(onlyAgencies.map(String))],
    { encoding: "utf8", maxBuffer: 64 << 20 },
  );
  if (r.status !== 0) throw new Error(`python3 compare failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as StoredCheck;
}

export type StorageTarget = { kind: "file"; path: string } | { kind: "postgres"; url: string };

export interface StoredCounts {
  rows: number;
  /** agency -> rows and winners found in the bets file. */
  perAgency: Map<number, { rows: number; winners: number }>;
  /** Rows that were not 6 fields with a numeric agency (should be none). */
  bad: number;
  /** PostgreSQL: agency -> rows of the `winners` table (what the draw stored). */
  drawn?: Map<number, number>;
}

type CsvRecord = NonNullable<ReturnType<CsvReader["next"]>>;

/** Streams the CSV records of a file to `take`, in bounded memory. */
async function scanCsv(path: string, take: (rec: CsvRecord) => void): Promise<void> {
  const reader = new CsvReader();
  for await (const chunk of createReadStream(path, {
    highWaterMark: 1 << 20,
  }) as AsyncIterable<Buffer>) {
    reader.feed(chunk);
    for (let rec = reader.next(); rec; rec = reader.next()) take(rec);
  }
  const last = reader.end();
  if (last) take(last);
}

const digits = (rec: CsvRecord, i: number) =>
  parseDigits(rec.bufs[i]!, rec.starts[i]!, rec.ends[i]!, 9);

/** Counts the rows and winners per agency in the server's bets.csv (streamed). */
export async function countStoredBets(path: string): Promise<StoredCounts> {
  const out: StoredCounts = { rows: 0, perAgency: new Map(), bad: 0 };
  if (!existsSync(path)) return out;
  await scanCsv(path, (rec) => {
    const agency = rec.fieldCount === 6 ? digits(rec, 0) : -1;
    if (agency < 0) {
      out.bad++;
      return;
    }
    let c = out.perAgency.get(agency);
    if (!c) {
      c = { rows: 0, winners: 0 };
      out.perAgency.set(agency, c);
    }
    c.rows++;
    if (digits(rec, 5) === LOTTERY_WINNER_NUMBER) c.winners++;
    out.rows++;
  });
  return out;
}

/** Counts the rows (records) of an agency's input file and the winners among them. */
export async function countAgencyFile(path: string): Promise<{ rows: number; winners: number }> {
  const out = { rows: 0, winners: 0 };
  await scanCsv(path, (rec) => {
    out.rows++;
    if (rec.fieldCount === 5 && digits(rec, 4) === LOTTERY_WINNER_NUMBER) out.winners++;
  });
  return out;
}

/**
 * Counts the rows and winners per agency in the PostgreSQL store's `bets` table (and, in
 * `drawn`, the winners its draw stored per agency), with the `pg` client the server uses.
 */
export async function countStoredBetsPg(url: string): Promise<StoredCounts> {
  const { default: pg } = await import("pg");
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    const out: StoredCounts = { rows: 0, perAgency: new Map(), bad: 0, drawn: new Map() };
    const exists = await client.query<{ bets: string | null; winners: string | null }>(
      "SELECT to_regclass('bets')::text AS bets, to_regclass('winners')::text AS winners",
    );
    if (exists.rows[0]?.bets == null) return out;
    const r = await client.query<{ agency: number; rows: string; winners: string }>(
      `SELECT agency, count(*) AS rows, count(*) FILTER (WHERE number = ${LOTTERY_WINNER_NUMBER}) AS winners
         FROM bets GROUP BY agency`,
    );
    for (const row of r.rows) {
      const rows = Number(row.rows);
      out.perAgency.set(row.agency, { rows, winners: Number(row.winners) });
      out.rows += rows;
    }
    if (exists.rows[0]?.winners != null) {
      const w = await client.query<{ agency: number; n: string }>(
        "SELECT agency, count(*) AS n FROM winners GROUP BY agency",
      );
      for (const row of w.rows) out.drawn!.set(row.agency, Number(row.n));
    }
    return out;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** countStoredBets or countStoredBetsPg, whichever store the run used. */
export function countStored(target: StorageTarget): Promise<StoredCounts> {
  return target.kind === "file" ? countStoredBets(target.path) : countStoredBetsPg(target.url);
}
