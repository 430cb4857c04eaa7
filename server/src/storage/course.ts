// The course's storage contract, same names and semantics as its Python original: `store_bets`
// appends bets to ./bets.csv as Python's csv.writer(quoting=QUOTE_MINIMAL) writes them,
// `load_bets` streams them back in file order, `has_won` says whether a bet won.

import { open } from "node:fs/promises";
import { type Bet, has_won } from "../../../shared/src/bet.js";
import { encodeCsvRow } from "../../../shared/src/csv.js";
import { BetFileIterator, BetRowView, readRows } from "./readers.js";

export { has_won };
export const STORAGE_FILEPATH = "./bets.csv";
export const STORAGE_COLUMNS = [
  "agency",
  "first_name",
  "last_name",
  "document",
  "birthdate",
  "number",
];

function betFields(bet: Bet): string[] {
  return [
    String(bet.agency),
    bet.first_name,
    bet.last_name,
    bet.document,
    bet.birthdate,
    String(bet.number),
  ];
}

/** Appends bets to the CSV file (as the course's store_bets) and makes them durable. */
export async function store_bets(bets: readonly Bet[], path = STORAGE_FILEPATH): Promise<void> {
  const fh = await open(path, "a");
  try {
    await fh.write(Buffer.concat(bets.map((b) => encodeCsvRow(betFields(b)))));
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/**
 * Streams the stored bets back in file order (as the course's load_bets), in bounded memory.
 * - `load_bets(path)`: an async iterable of Bet objects;
 * - `load_bets(path, onBet)`: calls `onBet` for every bet and resolves with the count. The bet
 *   passed is a view valid only during the call (copy what you keep): this is the form the
 *   draw uses, as it allocates nothing per stored bet.
 */
export function load_bets(path?: string): AsyncIterableIterator<Bet>;
export function load_bets(path: string, onBet: (bet: Bet) => void): Promise<number>;
export function load_bets(
  path = STORAGE_FILEPATH,
  onBet?: (bet: Bet) => void,
): AsyncIterableIterator<Bet> | Promise<number> {
  if (!onBet) return new BetFileIterator(path);
  const view = new BetRowView();
  let n = 0;
  return readRows(path, (rec) => {
    if (view.point(rec)) {
      n++;
      onBet(view);
    }
  }).then(() => n);
}
