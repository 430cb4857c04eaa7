// Group commit into PostgreSQL. Batches of any agencies queue while a transaction is in flight
// and go out together in the next one:
//
//   BEGIN; SELECT … FROM agencies WHERE agency IN (…) ORDER BY agency FOR UPDATE
//   -- each batch's position checked against the locked rows, in queue order
//   COPY bets (…) FROM STDIN (FORMAT binary)   -- the accepted batches' rows (pg-rows.ts)
//   UPDATE agencies SET committed = …; COMMIT
//
// The row locks make a batch resent through another replica safe even while this transaction is
// in flight: the other transaction waits for the lock, then sees the advanced position and refuses
// that batch only (OUT_OF_SEQUENCE). Locks are taken in agency order, so two transactions never
// deadlock. A batch's callback runs only after COMMIT returned (an ACK means durable: the cluster
// runs with fsync and synchronous_commit on). If anything fails the transaction is abandoned with
// its connection and every batch of it answers STORAGE_FAILURE; a COMMIT whose answer was lost may
// still have happened, which is fine: the agency's next WELCOME reads the committed position.
//
// Why COPY with pg + pg-copy-streams: measured on this 2-core machine (500,000 rows in
// transactions of 5,000, same locking as here, PostgreSQL 15, fsync on), rows/s:
//   pg + pg-copy-streams, COPY csv       190,000 – 390,000
//   pg, INSERT … SELECT FROM unnest(…)   160,000 – 205,000
//   postgres (porsager), unnest insert   127,000 – 139,000
//   postgres (porsager), COPY writable    62,000 –  76,000
// and reading the table back through a cursor, pg 420,000 – 890,000 rows/s vs postgres
// 160,000 – 520,000 (ranges: the machine is shared with other work). Then COPY binary against
// COPY csv, same rows, same client: 515,000 – 612,000 vs 476,000 – 509,000 rows/s.
// Each transaction's rows go out as one CopyData message (pg-copy-streams writes two socket
// writes per chunk it is given).

import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { ErrorCode, fault } from "../../../shared/src/errors.js";
import type { PgHealth } from "./pg-health.js";
import { COPY_BINARY_HEADER, COPY_BINARY_TRAILER } from "./pg-rows.js";
import { BETS_COLUMNS } from "./pg-schema.js";
import type { AppendResult } from "./types.js";

export interface QueuedBatch {
  agency: number;
  first: number;
  count: number;
  /** Binary COPY tuples (pg-rows.ts). */
  rows: Buffer;
  done: (r: AppendResult) => void;
}

/** A transaction carries at most this many row bytes; the rest waits for the next one. */
const MAX_GROUP_BYTES = 8 << 20;

const COPY_SQL = `COPY bets (${BETS_COLUMNS}) FROM STDIN (FORMAT binary)`;

export class PgIngest {
  private queue: QueuedBatch[] = [];
  private inFlight = 0;
  private scheduled = false;
  private readonly pending = new Map<number, number>();
  private readonly settledWaiters = new Map<number, Array<() => void>>();
  private idleWaiters: Array<() => void> = [];
  private lockTurn: Promise<void> = Promise.resolve();
  /** Transactions committed. */
  commits = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly health: PgHealth,
    /**
     * Transactions in flight at once. One by default: a second one mostly waits for the first's
     * row locks (the same agencies keep sending), and the batches that arrive meanwhile make the
     * next transaction larger instead. Measured at 5 × 1M, 3 replicas, four pairs of runs one
     * after the other: 6.5 – 8.0 s with one against 7.8 – 9.0 s with two (PostgreSQL 1.3 –
     * 1.7 CPU-s less); three were slower still.
     */
    private readonly maxInFlight = 1,
  ) {}

  append(b: QueuedBatch): void {
    this.queue.push(b);
    this.pending.set(b.agency, (this.pending.get(b.agency) ?? 0) + 1);
    if (!this.scheduled) {
      this.scheduled = true;
      // Let every frame already received in this event-loop turn join the same transaction.
      setImmediate(() => {
        this.scheduled = false;
        this.pump();
      });
    }
  }

  /** Resolves once every batch of the agency queued so far has been answered. */
  settled(agency: number): Promise<void> {
    if ((this.pending.get(agency) ?? 0) === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.settledWaiters.get(agency);
      if (list) list.push(resolve);
      else this.settledWaiters.set(agency, [resolve]);
    });
  }

  /** Resolves once nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      let bytes = 0;
      let n = 0;
      while (
        n < this.queue.length &&
        (n === 0 || bytes + this.queue[n]!.rows.length <= MAX_GROUP_BYTES)
      ) {
        bytes += this.queue[n]!.rows.length;
        n++;
      }
      const group = n === this.queue.length ? this.queue : this.queue.slice(0, n);
      this.queue = n === this.queue.length ? [] : this.queue.slice(n);
      this.inFlight++;
      void this.commit(group).then(() => {
        this.inFlight--;
        this.pump();
        if (this.queue.length === 0 && this.inFlight === 0) {
          const w = this.idleWaiters;
          this.idleWaiters = [];
          for (const r of w) r();
        }
      });
    }
  }

  private answer(b: QueuedBatch, r: AppendResult): void {
    const left = (this.pending.get(b.agency) ?? 1) - 1;
    if (left > 0) this.pending.set(b.agency, left);
    else this.pending.delete(b.agency);
    b.done(r);
    if (left <= 0) {
      const w = this.settledWaiters.get(b.agency);
      if (w) {
        this.settledWaiters.delete(b.agency);
        for (const r of w) r();
      }
    }
  }

  private async commit(group: QueuedBatch[]): Promise<void> {
    const agencies = [...new Set(group.map((b) => b.agency))].sort((a, b) => a - b);
    const results: AppendResult[] = new Array(group.length).fill(null);
    let client: pg.PoolClient | null = null;
    // Our own transactions take their locks in the order they were formed: a later one asks only
    // once the earlier one holds its rows, so it waits for that one's COMMIT and sees its
    // positions (otherwise it could lock first and find an agency's later batch out of order).
    const earlier = this.lockTurn;
    let locked!: () => void;
    this.lockTurn = new Promise((resolve) => {
      locked = resolve;
    });
    try {
      let res: pg.QueryResult[];
      try {
        client = await this.pool.connect();
        await earlier;
        // Agency numbers are integers we parsed: inlined, so BEGIN and the lock are one round trip.
        res = (await client.query(
          `BEGIN; SELECT agency, committed, done_total FROM agencies WHERE agency IN (${agencies.join(",")}) ORDER BY agency FOR UPDATE`,
        )) as unknown as pg.QueryResult[];
      } finally {
        locked();
      }
      const rows = res[1]!.rows as Array<{
        agency: number;
        committed: string;
        done_total: string | null;
      }>;
      const pos = new Map<number, number>();
      const done = new Set<number>();
      for (const r of rows) {
        pos.set(r.agency, Number(r.committed));
        if (r.done_total !== null) done.add(r.agency);
      }
      const start = new Map(pos);
      const accepted: Buffer[] = [];
      for (let i = 0; i < group.length; i++) {
        const b = group[i]!;
        const p = pos.get(b.agency);
        if (p === undefined) {
          results[i] = fault(ErrorCode.UNKNOWN_AGENCY, `agency ${b.agency} is not in the database`);
        } else if (done.has(b.agency)) {
          results[i] = fault(ErrorCode.AGENCY_FINISHED, `agency ${b.agency} already finished`);
        } else if (p !== b.first) {
          results[i] = fault(
            ErrorCode.OUT_OF_SEQUENCE,
            `batch starts at ${b.first}, the database has ${p} (stored through another connection)`,
          );
        } else {
          pos.set(b.agency, p + b.count);
          accepted.push(b.rows);
        }
      }
      if (accepted.length > 0) await copyRows(client, accepted);
      const changed: string[] = [];
      for (const [a, p] of pos) if (p !== start.get(a)) changed.push(`(${a},${p})`);
      await client.query(
        changed.length > 0
          ? `UPDATE agencies AS a SET committed = v.c FROM (VALUES ${changed.join(",")}) AS v(agency, c) WHERE a.agency = v.agency; COMMIT`
          : "COMMIT",
      );
      client.release();
      client = null;
      this.commits++;
      this.health.ok();
    } catch (err) {
      // The connection goes with the transaction: it may be broken, and must not be reused mid-tx.
      client?.release(true);
      const f = this.health.failed("ingest", err);
      results.fill(f);
    }
    for (let i = 0; i < group.length; i++) this.answer(group[i]!, results[i]!);
  }
}

/** Streams the tuples through COPY; resolves when the server has taken them all. */
function copyRows(client: pg.PoolClient, rows: Buffer[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = client.query(copyFrom(COPY_SQL));
    stream.on("error", reject);
    stream.on("finish", () => resolve());
    stream.end(Buffer.concat([COPY_BINARY_HEADER, ...rows, COPY_BINARY_TRAILER]));
  });
}
