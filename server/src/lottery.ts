// The lottery's shared state and its synchronisation, over one storage interface (storage/types.ts).
//
// Node runs all of this on one thread, so there are no locks in this process: every mutation below
// happens in one synchronous step of the event loop, and the only waits are explicit promises:
//  - positions: per agency, `accepted` is the position the next batch must start at. A batch's
//    position is checked and claimed in the same synchronous step that hands it to the store, so
//    two batches of this process can never claim the same position. With the file store this
//    process is the only writer and the claim is final. With PostgreSQL it is a cache: the store
//    checks the position again inside its transaction (the database is the authority, other
//    replicas write too); when the two disagree the cache entry is dropped and re-read at the
//    agency's next HELLO;
//  - the draw barrier: DONE is recorded durably by the store, which says whether the set of
//    finished agencies is complete; then `maybeDraw` asks the store to run the draw (the store makes
//    sure it runs once, across replicas too). Winners requests that arrive earlier wait for it
//    (no polling) and are answered when it is known. The store also tells us (watch) when another
//    replica completed the set or ran the draw.

import { Action } from "../../shared/src/actions.js";
import { ErrorCode, type Fault, fault, isFault } from "../../shared/src/errors.js";
import type { Logger } from "../../shared/src/log.js";
import { AgencyState } from "../../shared/src/protocol/messages.js";
import type { AppendResult, BetStore, Refusal, WireBatch } from "./storage/types.js";

/** A connection bound to an agency; the lottery can ask it to go away (another took over). */
export interface Binding {
  replaced(): void;
}

export interface Welcome {
  committed: number;
  state: number;
}

const DRAW_RETRY_MS = [200, 500, 1000, 2000, 5000];

export class Lottery {
  private readonly accepted = new Map<number, number>();
  /** Bumped on every claim and invalidation: a status read older than it must not fill the cache. */
  private readonly epochs = new Map<number, number>();
  private readonly done = new Set<number>();
  private readonly bindings = new Map<number, Binding>();
  private isDrawn = false;
  private drawing = false;
  private drawAgain = false;
  private closed = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly drawListeners = new Set<() => void>();

  private constructor(
    readonly agencies: number,
    private readonly secrets: ReadonlyMap<number, string>,
    readonly store: BetStore,
    private readonly log: Logger,
  ) {
    // Only our own count is final; a shared store's positions are read at each HELLO.
    if (store.exclusive)
      for (const [agency, n] of store.initial.positions) this.accepted.set(agency, n);
    for (const agency of store.initial.done.keys()) this.done.add(agency);
  }

  static async open(opts: {
    agencies: number;
    secrets: ReadonlyMap<number, string>;
    store: BetStore;
    log: Logger;
  }): Promise<Lottery> {
    const { store, log } = opts;
    const lottery = new Lottery(opts.agencies, opts.secrets, store, log);
    if (store.exclusive && (store.initial.done.size > 0 || store.initial.bets > 0)) {
      log.info(Action.RECOVERY, "success", {
        bets: store.initial.bets,
        agencies_done: store.initial.done.size,
      });
    }
    store.watch(() => lottery.maybeDraw());
    lottery.maybeDraw();
    return lottery;
  }

  get drawn(): boolean {
    return this.isDrawn;
  }

  /** Checks who the peer claims to be. */
  authenticate(agency: number, secret: string): Fault | null {
    if (!Number.isInteger(agency) || agency < 1 || agency > this.agencies) {
      return fault(ErrorCode.UNKNOWN_AGENCY, `agency ${agency} is not one of 1..${this.agencies}`);
    }
    const expected = this.secrets.get(agency);
    if (expected !== undefined && expected !== secret) {
      return fault(ErrorCode.AUTH_FAILED, `wrong secret for agency ${agency}`);
    }
    return null;
  }

  private bump(agency: number): void {
    this.epochs.set(agency, (this.epochs.get(agency) ?? 0) + 1);
  }

  /**
   * Binds a connection to an agency. A previous connection of the same agency on this server (a
   * dropped link the client has given up on) is told to go away first. Resolves with the
   * committed position once everything the agency had queued here is durable; with replicas the
   * position is read from the database (another replica may have advanced it).
   */
  async bind(agency: number, binding: Binding): Promise<Welcome | Fault> {
    const old = this.bindings.get(agency);
    this.bindings.set(agency, binding);
    if (old && old !== binding) old.replaced();
    if (!this.store.exclusive) {
      // Another replica may have moved the agency on: until the database answers, a batch that
      // races this HELLO is left to the store's own check rather than to a stale count.
      this.accepted.delete(agency);
      this.bump(agency);
    }
    const epoch = this.epochs.get(agency) ?? 0;
    const st = await this.store.status(agency);
    if (isFault(st)) return st;
    if (st.done) this.done.add(agency);
    if (st.drawn && !this.isDrawn) this.maybeDraw();
    let committed = st.committed;
    if (this.store.exclusive) {
      // Our own count: it includes batches pipelined after the HELLO, as the agency expects.
      committed = this.accepted.get(agency) ?? 0;
    } else if ((this.epochs.get(agency) ?? 0) === epoch) {
      this.accepted.set(agency, committed);
    }
    const state = this.isDrawn
      ? AgencyState.DRAWN
      : this.done.has(agency)
        ? AgencyState.DONE
        : AgencyState.OPEN;
    return { committed, state };
  }

  unbind(agency: number, binding: Binding): void {
    if (this.bindings.get(agency) === binding) this.bindings.delete(agency);
  }

  /** Checks the position of [first, first+count) for the agency and claims it. */
  private claim(agency: number, first: number, count: number): Fault | null {
    if (this.done.has(agency)) {
      return fault(ErrorCode.AGENCY_FINISHED, `agency ${agency} already finished`);
    }
    this.bump(agency);
    const expected = this.accepted.get(agency) ?? (this.store.exclusive ? 0 : undefined);
    // Not cached (a batch that raced its own HELLO): the store's check decides alone.
    if (expected === undefined) return null;
    if (first !== expected) {
      return fault(ErrorCode.OUT_OF_SEQUENCE, `batch starts at ${first}, expected ${expected}`);
    }
    this.accepted.set(agency, expected + count);
    return null;
  }

  /**
   * One batch as the wire carried it: the store validates and encodes it, then the position is
   * claimed, then the store takes it. A refusal known at once is returned (with the index of the
   * bet at fault, or -1); otherwise `done` is called once the batch is durable or failed.
   */
  ingest(batch: WireBatch, today: number, done: (r: AppendResult) => void): Refusal | null {
    const { agency } = batch;
    return this.store.append(
      batch,
      today,
      () => this.claim(agency, batch.first, batch.count),
      (r) => {
        if (r && !this.store.exclusive) {
          // Whatever the store found, our count for this agency is no longer to be trusted.
          this.accepted.delete(agency);
          this.bump(agency);
        }
        done(r);
      },
    );
  }

  /** Marks the agency finished after its `total` bets are durable; may trigger the draw. */
  async finish(agency: number, total: number): Promise<Fault | null> {
    const r = await this.store.markDone(agency, total);
    if (isFault(r)) return r;
    if (!this.done.has(agency)) {
      this.done.add(agency);
      this.log.debug(Action.AGENCY_DONE, "success", { agency, bets: total });
    }
    if (r.allDone) this.maybeDraw();
    return null;
  }

  /**
   * Asks the store to run the draw (it does nothing until every agency has finished, and runs it
   * once). Calls that arrive while one is in progress are folded into one more round after it.
   * A storage failure is logged and retried with backoff.
   */
  maybeDraw(): void {
    if (this.isDrawn || this.closed || this.agencies === 0) return;
    if (this.drawing) {
      this.drawAgain = true;
      return;
    }
    this.drawing = true;
    void this.drawRounds();
  }

  private async drawRounds(): Promise<void> {
    let failures = 0;
    for (;;) {
      this.drawAgain = false;
      const r = await this.store
        .draw()
        .catch((err: unknown) =>
          fault(ErrorCode.STORAGE_FAILURE, String((err as Error)?.message ?? err)),
        );
      if (this.closed) return;
      if (isFault(r)) {
        this.log.error(Action.SORTEO, "fail", { error: r.reason });
        const wait = DRAW_RETRY_MS[Math.min(failures++, DRAW_RETRY_MS.length - 1)]!;
        await new Promise<void>((res) => {
          this.retryTimer = setTimeout(res, wait);
          this.retryTimer.unref();
        });
        this.retryTimer = null;
        if (this.closed) return;
        continue;
      }
      if (r === null) {
        if (this.drawAgain) continue;
        this.drawing = false;
        return;
      }
      // Only the process that really ran the draw says so: one `sorteo` line across replicas.
      if (r.ran) this.log.info(Action.SORTEO, "success");
      this.isDrawn = true;
      this.drawing = false;
      const listeners = [...this.drawListeners];
      this.drawListeners.clear();
      for (const l of listeners) l();
      return;
    }
  }

  /** The agency's winning documents; only once the draw is known (see `drawn`, `onDraw`). */
  winnersOf(agency: number): Promise<readonly string[] | Fault> {
    return this.store.winnersOf(agency);
  }

  /** Calls back once the draw is done (immediately if it already is). Returns an unsubscribe. */
  onDraw(cb: () => void): () => void {
    if (this.isDrawn) {
      cb();
      return () => undefined;
    }
    this.drawListeners.add(cb);
    return () => {
      this.drawListeners.delete(cb);
    };
  }

  /** Stops retrying the draw; the store is closed by its owner. */
  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }
}
