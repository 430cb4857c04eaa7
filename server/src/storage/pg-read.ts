// load_bets over PostgreSQL: a server-side cursor fetched in slices, so memory stays bounded
// whatever the table holds. Rows come as arrays (no object per row from the driver's side) and are
// handed out through one reused Bet view, as the file store's load_bets does.

import type pg from "pg";
import type { Bet } from "../../../shared/src/bet.js";

export const FETCH_ROWS = 10_000;

/**
 * Streams every stored bet to `onBet` (the object is reused: copy what you keep); resolves with
 * the count. Runs inside the caller's transaction (a cursor lives in one).
 */
export async function pgLoadBets(
  client: pg.ClientBase,
  onBet: (bet: Bet) => void,
  fetchRows = FETCH_ROWS,
): Promise<number> {
  await client.query(
    "DECLARE quiniela_bets NO SCROLL CURSOR FOR SELECT agency, first_name, last_name, document, birthdate::text, number FROM bets",
  );
  const view: Bet = {
    agency: 0,
    first_name: "",
    last_name: "",
    document: "",
    birthdate: "",
    number: 0,
  };
  let n = 0;
  for (;;) {
    const r = await client.query<unknown[]>({
      text: `FETCH ${fetchRows} FROM quiniela_bets`,
      rowMode: "array",
    });
    if (r.rows.length === 0) break;
    for (const row of r.rows) {
      view.agency = row[0] as number;
      view.first_name = row[1] as string;
      view.last_name = row[2] as string;
      view.document = row[3] as string;
      view.birthdate = row[4] as string;
      view.number = row[5] as number;
      n++;
      onBet(view);
    }
  }
  await client.query("CLOSE quiniela_bets");
  return n;
}

/** load_bets on its own: a read-only transaction around the cursor. */
export async function pg_load_bets(pool: pg.Pool, onBet: (bet: Bet) => void): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN READ ONLY");
    const n = await pgLoadBets(client, onBet);
    await client.query("COMMIT");
    client.release();
    return n;
  } catch (err) {
    client.release(true);
    throw err;
  }
}
