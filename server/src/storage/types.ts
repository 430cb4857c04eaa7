// The one storage interface the lottery talks to. Two stores implement it: the file store
// (bets.csv + its journal; one server process owns it) and the PostgreSQL store (any number of
// server replicas share one database). The ingest path goes one way: the session validates a batch,
// the lottery checks its position against its cache, then the store encodes and stores it.

import type { Bet } from "../../../shared/src/bet.js";
import type { Fault } from "../../../shared/src/errors.js";
import type { BatchView } from "../../../shared/src/protocol/messages.js";

/** A validated batch of one agency, as the wire carried it. */
export interface IngestBatch {
  agency: number;
  /** Position of its first bet in the agency's stream. */
  first: number;
  view: BatchView;
  /** The parsed number of each bet. */
  numbers: ArrayLike<number>;
}

/**
 * How an append ended: null when durable; otherwise why nothing of it was stored:
 * STORAGE_FAILURE (retryable), or OUT_OF_SEQUENCE / AGENCY_FINISHED when the store's own,
 * authoritative check disagreed with the lottery's cache (another replica got there first).
 */
export type AppendResult = Fault | null;

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
  /** A batch the store cannot hold although it is a valid bet (bet index and why), else null. */
  refuse(view: BatchView): { fault: Fault; index: number } | null;
  /** Encodes the batch now (the view is not kept) and calls `done` once it is durable or failed. */
  append(batch: IngestBatch, done: (r: AppendResult) => void): void;
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
