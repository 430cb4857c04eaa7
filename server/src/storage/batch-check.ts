// A BATCH (or BET) payload checked bet by bet: the frame's field ranges (decodeBatch) and every
// bet's rules (validateBetFields), giving the code and index of the first fault. The PostgreSQL
// store encodes from the ranges this yields; the file store validates and encodes in one pass
// (rows.ts) and comes here only to say why it refused a batch.

import { FIELD_COUNT, validateBetFields } from "../../../shared/src/bet.js";
import { isFault } from "../../../shared/src/errors.js";
import {
  type BatchView,
  decodeBatch,
  MAX_BETS_PER_FRAME,
} from "../../../shared/src/protocol/messages.js";
import type { Refusal } from "./types.js";

export interface CheckedBatch {
  view: BatchView;
  /** Bet i's parsed number (reused by the next call). */
  numbers: Int32Array;
}

const numbers = new Int32Array(MAX_BETS_PER_FRAME);

/** The batch's field ranges and numbers, or why it is refused (index -1: the frame itself). */
export function checkBatch(payload: Buffer, today: number): CheckedBatch | Refusal {
  const view = decodeBatch(payload);
  if (isFault(view)) return { fault: view, index: -1 };
  for (let b = 0; b < view.count; b++) {
    const n = validateBetFields(view.buf, view.starts, view.ends, b * FIELD_COUNT, today);
    if (typeof n !== "number") return { fault: n, index: b };
    numbers[b] = n;
  }
  return { view, numbers };
}

export function isRefusal(r: CheckedBatch | Refusal): r is Refusal {
  return "fault" in r;
}
