// The PostgreSQL store: any number of server replicas share one database (schema: pg-schema.ts).
// The database is the authority on everything shared; each replica only caches.
//
//  - positions: checked and advanced inside the ingest transaction under the agency's row lock
//    (pg-ingest.ts); a WELCOME reads the committed position from the database after this
//    replica's own pending batches of the agency were answered (FOR SHARE: it also waits for
//    another replica's transaction that holds the row).
//  - DONE: one transaction that takes the `draw` row's lock first, so DONEs are serialised across
//    replicas and exactly one of them sees the set complete (two DONEs landing at once cannot both
//    miss each other); it checks committed == total, records done_total and, when the set is
//    complete, NOTIFYs `all_done`, delivered at COMMIT.
//  - the draw: one transaction holding an advisory lock re-checks `not drawn` and `all done`,
//    streams the bets that hold the winning number (pg-read.ts; as the file store's draw, the
//    others cannot win) through the course's has_won, counts the stored bets, inserts the winners,
//    marks the draw done and NOTIFYs `drawn`. Every replica that hears `all_done` (or starts, or
//    re-connects its LISTEN) tries it: the first runs it, the others wait on the lock and then
//    find it done. If the one running it dies, its transaction aborts, the lock is released and a
//    waiting replica runs it instead.
//  - PostgreSQL lost mid-run: the requests that needed it answer STORAGE_FAILURE (the agency
//    reconnects and resumes); pg's pool opens new connections once the server is back. Nothing is
//    acknowledged before COMMIT, so nothing acknowledged is lost.

import type pg from "pg";
import { Action } from "../../../shared/src/actions.js";
import { type Bet, FIELD_COUNT, has_won, LOTTERY_WINNER_NUMBER } from "../../../shared/src/bet.js";
import { redactUrl } from "../../../shared/src/config.js";
import { ErrorCode, FatalCode, fault, QuinielaError } from "../../../shared/src/errors.js";
import type { Logger } from "../../../shared/src/log.js";
import type { BatchView } from "../../../shared/src/protocol/messages.js";
import { checkBatch, isRefusal } from "./batch-check.js";
import { pgDriver } from "./pg-driver.js";
import { PgHealth, pgErrorText } from "./pg-health.js";
import { PgIngest } from "./pg-ingest.js";
import { PgListener } from "./pg-listen.js";
import { pg_load_bets, pgBetsWithNumber } from "./pg-read.js";
import { encodeBatchBinary } from "./pg-rows.js";
import { CHANNEL, ensureSchema, LOCK_CLASS, LOCK_DRAW } from "./pg-schema.js";
import { SegmentAllocator } from "./segments.js";
import type * as store from "./types.js";

export interface PgStoreOptions {
  url: string;
  /** Agencies 1..N the draw waits for. */
  agencies: number;
  log: Logger;
  /** Connections in the pool, at most (the LISTEN connection is one more). */
  poolSize?: number;
  /** How long to keep retrying an unreachable database at start-up. */
  retryMs?: number;
  /** Ingest transactions in flight at once (pg-ingest.ts; default 1). */
  ingestInFlight?: number;
}

const START_RETRY_MS = [250, 500, 1000, 2000, 4000];

/** PostgreSQL text cannot hold NUL: such a bet is refused alone instead of failing its group. */
export function refuseNul(view: BatchView): store.Refusal | null {
  const at = view.buf.indexOf(0, view.starts[0]);
  if (at < 0) return null;
  let index = 0;
  while (index + 1 < view.count && view.starts[(index + 1) * FIELD_COUNT]! <= at) index++;
  return { fault: fault(ErrorCode.INVALID_NAME, "name holds a NUL character"), index };
}

export class PgStore implements store.BetStore {
  readonly kind = "postgres";
  readonly exclusive = false;
  private readonly alloc = new SegmentAllocator();
  private readonly ingest: PgIngest;
  private readonly listener: PgListener;
  private onChange: (() => void) | null = null;
  private closed = false;

  private constructor(
    readonly pool: pg.Pool,
    readonly initial: store.StoreSnapshot,
    private readonly health: PgHealth,
    private readonly opts: PgStoreOptions,
    clientConfig: pg.ClientConfig,
  ) {
    this.ingest = new PgIngest(pool, health, opts.ingestInFlight);
    this.listener = new PgListener(clientConfig, CHANNEL, health, () => this.onChange?.());
  }

  /** Connects (retrying with backoff within opts.retryMs), creates the schema, starts LISTEN. */
  static async open(opts: PgStoreOptions): Promise<PgStore> {
    const { log } = opts;
    const url = redactUrl(opts.url);
    const clientConfig: pg.ClientConfig = {
      connectionString: opts.url,
      connectionTimeoutMillis: 5000,
      keepAlive: true,
      application_name: "quiniela-server",
      // A replica that hangs (not dies) inside a transaction must not hold agencies' rows or the
      // draw lock forever: the server ends such a session, its transaction aborts.
      options: "-c idle_in_transaction_session_timeout=60000",
    };
    const pool = new (pgDriver().Pool)({ ...clientConfig, max: opts.poolSize ?? 8 });
    const health = new PgHealth(log);
    // An idle pooled connection cut by the server (restart) is only an event, not a crash.
    pool.on("error", (err) => health.failed("idle connection", err));
    // A checked-out connection between two queries gets its error as an event too (the next
    // query on it fails and answers STORAGE_FAILURE); unhandled, it would end the process.
    pool.on("connect", (c) => c.on("error", (err) => health.failed("connection", err)));
    const started = Date.now();
    const budget = opts.retryMs ?? 30_000;
    let snapshot: store.StoreSnapshot | null = null;
    for (let attempt = 1; snapshot === null; attempt++) {
      try {
        await ensureSchema(pool, opts.agencies);
        snapshot = await readSnapshot(pool);
      } catch (err) {
        const elapsed = Date.now() - started;
        if (elapsed >= budget) {
          await pool.end().catch(() => undefined);
          throw new QuinielaError(
            FatalCode.STORAGE_UNREACHABLE,
            `PostgreSQL at ${url} unusable after ${attempt} attempts in ${Math.round(elapsed / 1000)}s: ${pgErrorText(err)}`,
          );
        }
        const wait = Math.min(START_RETRY_MS[Math.min(attempt - 1, 4)]!, budget - elapsed);
        log.warn(Action.STORAGE, "fail", {
          store: "postgres",
          url,
          attempt,
          retry_in_ms: wait,
          error: pgErrorText(err),
        });
        await new Promise((r) => setTimeout(r, wait));
      }
    }
    log.info(Action.STORAGE, "success", {
      store: "postgres",
      url,
      bets: snapshot.bets,
      agencies_done: snapshot.done.size,
    });
    const opened = new PgStore(pool, snapshot, health, opts, clientConfig);
    opened.listener.start();
    return opened;
  }

  append(
    batch: store.WireBatch,
    today: number,
    claim: store.Claim,
    done: store.AppendDone,
  ): store.Refusal | null {
    const checked = checkBatch(batch.payload, today);
    if (isRefusal(checked)) return checked;
    const nul = refuseNul(checked.view);
    if (nul) return nul;
    const claimed = claim();
    if (claimed) return { fault: claimed, index: -1 };
    if (this.closed) {
      done(fault(ErrorCode.SHUTTING_DOWN, "server shutting down"));
      return null;
    }
    const rows = encodeBatchBinary(this.alloc, batch.agency, checked.view, checked.numbers);
    this.ingest.append({
      agency: batch.agency,
      first: batch.first,
      count: batch.count,
      rows,
      done,
    });
    return null;
  }

  get commits(): number {
    return this.ingest.commits;
  }

  async status(agency: number): Promise<store.AgencyStatus | store.Fault> {
    await this.ingest.settled(agency);
    try {
      const r = await this.pool.query<{ committed: string; done: boolean; drawn: boolean }>(
        `SELECT a.committed, a.done_total IS NOT NULL AS done, d.drawn
           FROM agencies a CROSS JOIN draw d WHERE a.agency = $1 FOR SHARE OF a`,
        [agency],
      );
      this.health.ok();
      const row = r.rows[0];
      return row
        ? { committed: Number(row.committed), done: row.done, drawn: row.drawn }
        : { committed: 0, done: false, drawn: false };
    } catch (err) {
      return this.health.failed("status", err);
    }
  }

  async markDone(agency: number, total: number): Promise<store.DoneResult> {
    await this.ingest.settled(agency);
    const n = this.opts.agencies;
    let client: pg.PoolClient | null = null;
    try {
      client = await this.pool.connect();
      // The draw row's lock serialises every DONE (see the header).
      const res = (await client.query(
        `BEGIN; SELECT drawn FROM draw FOR UPDATE;
         SELECT committed, done_total FROM agencies WHERE agency = ${agency | 0} FOR UPDATE`,
      )) as unknown as pg.QueryResult[];
      const row = res[2]!.rows[0] as { committed: string; done_total: string | null } | undefined;
      let answer: store.Fault | null = null;
      if (!row) {
        answer = fault(ErrorCode.UNKNOWN_AGENCY, `agency ${agency} is not in the database`);
      } else if (row.done_total !== null) {
        const prev = Number(row.done_total);
        if (prev !== total) {
          answer = fault(
            ErrorCode.COUNT_MISMATCH,
            `agency finished with ${prev} bets, not ${total}`,
          );
        }
      } else if (Number(row.committed) !== total) {
        answer = fault(
          ErrorCode.COUNT_MISMATCH,
          `agency says ${total} bets, server has ${row.committed}`,
        );
      } else {
        await client.query("UPDATE agencies SET done_total = $2 WHERE agency = $1", [
          agency,
          total,
        ]);
      }
      let allDone = false;
      if (!answer) {
        const c = await client.query<{ n: string }>(
          "SELECT count(*) AS n FROM agencies WHERE done_total IS NOT NULL AND agency BETWEEN 1 AND $1",
          [n],
        );
        allDone = Number(c.rows[0]!.n) >= n;
        if (allDone) await client.query(`NOTIFY ${CHANNEL}, 'all_done'`);
      }
      await client.query(answer ? "ROLLBACK" : "COMMIT");
      client.release();
      client = null;
      this.health.ok();
      return answer ?? { allDone };
    } catch (err) {
      client?.release(true);
      return this.health.failed("done", err);
    }
  }

  async draw(): Promise<store.DrawResult> {
    const n = this.opts.agencies;
    let client: pg.PoolClient | null = null;
    try {
      // Cheap look first: most calls find it not complete yet, or already drawn.
      const look = await this.pool.query<{ drawn: boolean; done: string }>(
        `SELECT drawn, (SELECT count(*) FROM agencies WHERE done_total IS NOT NULL AND agency BETWEEN 1 AND $1) AS done FROM draw`,
        [n],
      );
      const l = look.rows[0]!;
      if (l.drawn) return { ran: false };
      if (n === 0 || Number(l.done) < n) return null;

      client = await this.pool.connect();
      const res = (await client.query(
        `BEGIN; SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${LOCK_DRAW});
         SELECT drawn, (SELECT count(*) FROM agencies WHERE done_total IS NOT NULL AND agency BETWEEN 1 AND ${n | 0}) AS done FROM draw`,
      )) as unknown as pg.QueryResult[];
      const s = res[2]!.rows[0] as { drawn: boolean; done: string };
      if (s.drawn || Number(s.done) < n) {
        await client.query("COMMIT");
        client.release();
        client = null;
        return s.drawn ? { ran: false } : null;
      }
      const documents: string[] = [];
      const agencies: number[] = [];
      await pgBetsWithNumber(client, LOTTERY_WINNER_NUMBER, (bet: Bet) => {
        if (has_won(bet)) {
          agencies.push(bet.agency);
          documents.push(bet.document);
        }
      });
      // Every stored bet advanced its agency's position in the same transaction that stored it.
      const counted = await client.query<{ bets: string }>(
        "SELECT coalesce(sum(committed), 0) AS bets FROM agencies",
      );
      const bets = Number(counted.rows[0]!.bets);
      if (documents.length > 0) {
        await client.query(
          "INSERT INTO winners (agency, document) SELECT * FROM unnest($1::int[], $2::text[])",
          [agencies, documents],
        );
      }
      await client.query(
        "UPDATE draw SET drawn = true, drawn_at = now(), bets = $1, winners = $2",
        [bets, documents.length],
      );
      await client.query(`NOTIFY ${CHANNEL}, 'drawn'`);
      await client.query("COMMIT");
      client.release();
      client = null;
      this.health.ok();
      return { ran: true };
    } catch (err) {
      client?.release(true);
      return this.health.failed("draw", err);
    }
  }

  async winnersOf(agency: number): Promise<readonly string[] | store.Fault> {
    try {
      const r = await this.pool.query<unknown[]>({
        text: "SELECT document FROM winners WHERE agency = $1",
        values: [agency],
        rowMode: "array",
      });
      this.health.ok();
      return r.rows.map((row) => row[0] as string);
    } catch (err) {
      return this.health.failed("winners", err);
    }
  }

  load_bets(onBet: (bet: Bet) => void): Promise<number> {
    return pg_load_bets(this.pool, onBet);
  }

  watch(onChange: () => void): void {
    this.onChange = onChange;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.ingest.idle();
    await this.listener.stop();
    await this.pool.end().catch(() => undefined);
    this.opts.log.info(Action.CLOSE_DATABASE, "success", { url: redactUrl(this.opts.url) });
  }
}

async function readSnapshot(pool: pg.Pool): Promise<store.StoreSnapshot> {
  const r = await pool.query<{ agency: number; committed: string; done_total: string | null }>(
    "SELECT agency, committed, done_total FROM agencies",
  );
  const positions = new Map<number, number>();
  const done = new Map<number, number>();
  let bets = 0;
  for (const row of r.rows) {
    const c = Number(row.committed);
    bets += c;
    if (c > 0) positions.set(row.agency, c);
    if (row.done_total !== null) done.set(row.agency, Number(row.done_total));
  }
  return { positions, done, bets };
}
