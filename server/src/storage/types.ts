// The one storage interface the lottery talks to. Two stores implement it: the file store
// (bets.csv + its journal; one server process owns it) and the PostgreSQL store (any number of
// server replicas share one database). The ingest path goes one way: the session hands the lottery a
// batch as the wire carried it, the store validates and encodes it, the lottery claims its position
// (against its cache), and only then does the store take it.

import type { Bet } from "../../../shared/src/bet.js";
import type { Fault } from "../../../shared/src/errors.js";

/** What most results here may be instead: a store needs only this module for its signatures. */
export type { Fault };

/** A batch of one agency as the wire carried it: a BATCH or BET payload, not yet validated. */
export interface WireBatch {
  agency: number;
  /** Position of its first bet in the agency's stream. */
  first: number;
  /** Bets it holds. */
  count: number;
  /** first (u32), count (u16), the bets' field lengths, their field bytes. */
  payload: Buffer;
}

/** A batch refused as a whole: why, and the index of the bet at fault (-1: the batch itself). */
export interface Refusal {
  fault: Fault;
  index: number;
}

/**
 * How an append ended: null when durable; otherwise why nothing of it was stored:
 * STORAGE_FAILURE (retryable), or OUT_OF_SEQUENCE / AGENCY_FINISHED when the store's own,
 * authoritative check disagreed with the lottery's cache (another replica got there first).
 */
export type AppendResult = Fault | null;

/** Claims a validated batch's position (the lottery's check): null, or why it is refused. */
export type Claim = () => Fault | null;
/** Told how an append ended. */
export type AppendDone = (r: AppendResult) => void;

export interface AgencyStatus {
  /** Bets of the agency durably stored (its next position). */
  committed: number;
  /** The agency's DONE was recorded. */
  done: boolean;
  /** The draw has been run (by any replica). */
  drawn: boolean;
}

/** After a DONE: whether every agency has now finished. */
export type DoneResult = Fault | { allDone: boolean };

/** null: not every agency has finished; ran: this process ran the draw (false: it was already run). */
export type DrawResult = Fault | null | { ran: boolean };

export interface StoreSnapshot {
  /** Committed bets per agency. */
  positions: ReadonlyMap<number, number>;
  /** Finished agencies and their totals. */
  done: ReadonlyMap<number, number>;
  /** Bets stored in all. */
  bets: number;
}

export interface BetStore {
  readonly kind: "file" | "postgres";
  /**
   * True when this process is the only writer, so the positions the lottery counts are the
   * truth (file store). False when other replicas write too: the store's own check decides.
   */
  readonly exclusive: boolean;
  /** What the store held when it was opened. */
  readonly initial: StoreSnapshot;
  /**
   * Validates the batch and encodes it for storage (the payload is not kept), then asks `claim`
   * for its position; only a claimed batch is stored, and `done` runs once it is durable or
   * failed. A batch refused here (an invalid bet, a bet this store cannot hold, or the claim's
   * answer, index -1) is returned and nothing of it is stored.
   */
  append(batch: WireBatch, today: number, claim: Claim, done: AppendDone): Refusal | null;
  /** Resolves once everything appended so far for `agency` is settled, then reads its status. */
  status(agency: number): Promise<AgencyStatus | Fault>;
  /** Records that the agency finished with `total` bets, after its appends are durable. */
  markDone(agency: number, total: number): Promise<DoneResult>;
  /** Runs the draw if every agency has finished and nobody ran it yet. */
  draw(): Promise<DrawResult>;
  /** The agency's winning documents (only after the draw). */
  winnersOf(agency: number): Promise<readonly string[] | Fault>;
  /** Streams every stored bet (a view valid during the call); resolves with the count. */
  load_bets(onBet: (bet: Bet) => void): Promise<number>;
  /** Called when another replica may have finished the set or run the draw. */
  watch(onChange: () => void): void;
  /** Flushes what is queued and closes (logging each closed resource). */
  close(): Promise<void>;
}
