// The PostgreSQL store's schema, created idempotently at every start. Several replicas may start
// at once: `CREATE TABLE IF NOT EXISTS` alone can still fail when two sessions create the same
// table concurrently, so the DDL runs in one transaction holding an advisory lock.
//
//   bets      the course's Bet, one row per stored bet (document is text: leading zeros kept);
//             no index: it is only appended to (COPY) and scanned once by the draw
//   agencies  per agency: committed = bets stored (its next position), done_total = the total
//             its DONE announced (NULL while open). Its row lock orders each agency's writes
//   draw      one row: whether the draw has run (and what it found)
//   winners   the draw's result, read per agency

import type pg from "pg";

/** Advisory lock keys: (QUINIELA, n). */
export const LOCK_CLASS = 0x5149_4e49; // "QINI"
export const LOCK_SCHEMA = 1;
export const LOCK_DRAW = 2;

/** Channel for NOTIFY: payload `all_done` (the set of finished agencies is complete) or `drawn`. */
export const CHANNEL = "quiniela";

export const BETS_COLUMNS = "agency, first_name, last_name, document, birthdate, number";

export function schemaSql(agencies: number): string {
  if (!Number.isInteger(agencies) || agencies < 0) throw new Error(`bad agency count ${agencies}`);
  return `BEGIN;
SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${LOCK_SCHEMA});
CREATE TABLE IF NOT EXISTS bets (
  agency integer NOT NULL,
  first_name text NOT NULL,
  last_name text NOT NULL,
  document text NOT NULL,
  birthdate date NOT NULL,
  number integer NOT NULL
);
CREATE TABLE IF NOT EXISTS agencies (
  agency integer PRIMARY KEY,
  committed bigint NOT NULL DEFAULT 0,
  done_total bigint
);
CREATE TABLE IF NOT EXISTS draw (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  drawn boolean NOT NULL DEFAULT false,
  drawn_at timestamptz,
  bets bigint,
  winners bigint
);
CREATE TABLE IF NOT EXISTS winners (
  agency integer NOT NULL,
  document text NOT NULL
);
CREATE INDEX IF NOT EXISTS winners_agency ON winners (agency);
INSERT INTO draw (id) VALUES (true) ON CONFLICT DO NOTHING;
INSERT INTO agencies (agency) SELECT generate_series(1, ${agencies}) ON CONFLICT DO NOTHING;
COMMIT;`;
}

/** Creates what is missing; safe to run from several replicas at once. */
export async function ensureSchema(db: pg.Pool | pg.ClientBase, agencies: number): Promise<void> {
  await db.query(schemaSql(agencies));
}
