// Bets for tests, written in the course's field order.

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
