// Bets for tests, written in the course's field order.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Bet } from "../../shared/src/bet.js";

export function bet(
  agency: number,
  first_name: string,
  last_name: string,
  document: string,
  birthdate: string,
  number: number,
): Bet {
  return { agency, first_name, last_name, document, birthdate, number };
}

/**
 * Bets with every field a store must carry byte for byte: quotes, commas, line breaks, spaces at
 * the ends, tabs, backslashes (COPY's escape), `\\.` and `\\N` (COPY's end and NULL), emoji,
 * leading zeros, the smallest and largest document and number (test/lib/awkward-bets.json, as
 * data: first name, last name, document, birthdate, number). `agencyOf(i)`: bet i's agency.
 */
export function awkwardBets(agencyOf: (i: number) => number): Bet[] {
  const file = join(import.meta.dirname, "../../../test/lib/awkward-bets.json");
  const rows = JSON.parse(readFileSync(file, "utf8")) as [string, string, string, string, number][];
  return rows.map(([first, last, document, birthdate, number], i) =>
    bet(agencyOf(i), first, last, document, birthdate, number),
  );
}

/**
 * An agency's CSV rows, valid and invalid mixed (the comment names each row's line): lines 1, 4
 * and 7 are valid bets, 2 to 6 but 4 are each refused for one reason.
 */
export const MIXED_ROWS = [
  "Ana,Pérez,30111222,1990-01-01,7574", // 1
  "Luis,Gómez,30111223,2023-02-30,11", // 2 invalid date
  "Eva,Ruiz,30111224,1991-01-01,abc", // 3 invalid number
  '"Fornerón, Juan ""el Tano""",Álvarez,00000001,2000-01-01,0', // 4 quoted, valid
  "solo,tres,campos", // 5 wrong field count
  ",Vacío,30111225,1990-01-01,1", // 6 empty name
  "Zoe,D'Angelo,30111226,1980-12-31,7574", // 7
];
