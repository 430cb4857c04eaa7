// load_bets over PostgreSQL, streaming in bounded memory: `COPY (SELECT …) TO STDOUT (FORMAT
// csv)` inside the caller's transaction, read chunk by chunk with the same CSV reader and lazily
// decoded row view as the file store's load_bets (readers.ts), so the draw's has_won sees the
// same kind of Bet and nothing is allocated per row.
//
// Why not a cursor (DECLARE … FETCH 10000 with the driver's row parser, which was the first
// version): on this machine it read 1,000,000 bets in 2.6–3.0 s, against 0.44–0.56 s for this
// COPY stream; the driver builds five strings and an array per row, and that garbage was most
// of a replica's CPU during a draw. The COPY stream is just as incremental: the driver pauses
// the socket when the stream's buffer is full, and every chunk is consumed synchronously.
//
// The draw reads number first, as the file store's draw does (scanByNumber): PostgreSQL's scan
// drops the rows whose number cannot win, has_won decides the rest. Streaming every row to the
// replica instead made one backend format and one replica parse 5M rows (≈ 3-4 s at 5 × 1M).

import type pg from "pg";
import { to as copyTo } from "pg-copy-streams";
import type { Bet } from "../../../shared/src/bet.js";
import { CsvReader } from "../../../shared/src/csv.js";
import { BetRowView } from "./readers.js";

const SELECT_BETS =
  "SELECT agency, first_name, last_name, document, to_char(birthdate, 'YYYY-MM-DD'), number FROM bets";

/**
 * Streams every stored bet to `onBet` (a view valid only during the call: copy what you keep);
 * resolves with the count. Runs on the caller's connection (inside its transaction, if any).
 */
export function pgLoadBets(client: pg.ClientBase, onBet: (bet: Bet) => void): Promise<number> {
  return streamBets(client, SELECT_BETS, onBet);
}

/** As pgLoadBets, only the bets holding `number` (the others cannot win); resolves with their count. */
export function pgBetsWithNumber(
  client: pg.ClientBase,
  number: number,
  onBet: (bet: Bet) => void,
): Promise<number> {
  if (!Number.isSafeInteger(number)) throw new Error(`bad number ${number}`);
  return streamBets(client, `${SELECT_BETS} WHERE number = ${number}`, onBet);
}

function streamBets(
  client: pg.ClientBase,
  select: string,
  onBet: (bet: Bet) => void,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const reader = new CsvReader();
    const view = new BetRowView();
    let n = 0;
    let failed = false;
    const stream = client.query(copyTo(`COPY (${select}) TO STDOUT (FORMAT csv)`));
    stream.on("data", (chunk: Buffer) => {
      if (failed) return;
      reader.feed(chunk);
      try {
        for (let rec = reader.next(); rec; rec = reader.next()) {
          if (!view.point(rec)) throw new Error(`bets row ${n + 1} is not a bet`);
          n++;
          onBet(view);
        }
      } catch (err) {
        failed = true;
        stream.destroy(err as Error);
      }
    });
    stream.on("error", reject);
    stream.on("end", () => {
      const last = reader.end();
      if (last && view.point(last)) {
        n++;
        onBet(view);
      }
      resolve(n);
    });
  });
}

/** load_bets on its own: a read-only transaction around the stream. */
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
