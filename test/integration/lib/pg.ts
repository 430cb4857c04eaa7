// PostgreSQL for the tests: one throwaway cluster per test file (tools/lib/pg-cluster.ts), a fresh
// database per test. Without PostgreSQL 15 installed the tests are skipped with the reason, except
// in CI (CI=true), where that is a failure: .ci/run installs it.

import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_PG_BIN, type PgCluster, startPgCluster } from "../../../kit/pg-cluster.js";
import { tempDir } from "../../../kit/programs.js";

const BIN = process.env.PG_BIN ?? DEFAULT_PG_BIN;

/** Why the PostgreSQL tests cannot run here (false: they can). */
export const pgSkip: string | false =
  existsSync(join(BIN, "initdb")) || process.env.CI === "true"
    ? false
    : `PostgreSQL 15 is not installed (${BIN}/initdb): apt-get install -y postgresql`;

export interface TestPg {
  cluster: PgCluster;
  /** A new empty database; resolves with its URL. */
  fresh(): Promise<string>;
  /** Runs SQL on a database (by URL or name) and returns psql's unaligned output. */
  query(db: string, sql: string): Promise<string>;
  /** Writes the bets table of a database to `path` as CSV (course column order). */
  dumpBets(db: string, path: string): Promise<void>;
  stop(): Promise<void>;
}

let n = 0;

export async function startTestPg(): Promise<TestPg> {
  const dir = join(tempDir(), "pg");
  const cluster = await startPgCluster({ dir });
  const dbName = (db: string) => (db.includes("/") ? db.slice(db.lastIndexOf("/") + 1) : db);
  const query = (db: string, sql: string) => cluster.psql(sql, dbName(db));
  return {
    cluster,
    fresh: () => cluster.createDatabase(`t${process.pid}_${n++}`),
    query,
    async dumpBets(db, path) {
      const csv = await query(
        db,
        "COPY (SELECT agency, first_name, last_name, document, birthdate::text, number FROM bets) TO STDOUT (FORMAT csv)",
      );
      writeFileSync(path, csv);
    },
    stop: () => cluster.stop(),
  };
}
