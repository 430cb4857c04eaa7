// The lottery's shared state and its synchronisation.
//
// Node runs all of this on one thread, so there are no locks: every mutation below happens in one
// synchronous step of the event loop, and the only waits are explicit promises:
//  - per agency, `accepted` is the position the next batch must start at; a batch is checked and
//    counted in the same synchronous step that queues its rows, so two batches can never claim
//    the same position (at most one connection is bound to an agency at a time);
//  - the draw barrier is a counter of finished agencies plus a promise: the agency that completes
//    the set triggers the draw once; winners requests that arrive earlier wait on that promise
//    (no polling) and are answered when it resolves;
//  - finishing is durable: DONE is acknowledged only after the agency's bets and the "done"
//    record in the state journal are on disk, so a restarted server knows who had finished.

import { readFile } from "node:fs/promises";
import { type Bet, has_won } from "../../shared/src/bet.js";
import type { SyncMode } from "../../shared/src/config.js";
import { ErrorCode, type Fault, fault } from "../../shared/src/errors.js";
import type { Logger } from "../../shared/src/log.js";
import { AgencyState } from "../../shared/src/protocol/messages.js";
import { type BetStore, GroupCommitFile, load_bets, openAppend } from "./storage.js";

export type Winners = ReadonlyMap<number, readonly string[]>;

/** A connection bound to an agency; the lottery can ask it to go away (another took over). */
export interface Binding {
  replaced(): void;
}

function parseJournal(text: string): Map<number, number> {
  const done = new Map<number, number>();
  for (const line of text.split("\r\n")) {
    const m = /^done,(\d+),(\d+)$/.exec(line);
    if (m) done.set(Number(m[1]), Number(m[2]));
  }
  return done;
}

export class Lottery {
  private readonly accepted = new Map<number, number>();
  private readonly bindings = new Map<number, Binding>();
  private winners: Winners | null = null;
  private drawing: Promise<Winners> | null = null;
  private drawListeners = new Set<(w: Winners) => void>();

  private constructor(
    readonly agencies: number,
    private readonly secrets: ReadonlyMap<number, string>,
    readonly store: BetStore,
    private readonly journal: GroupCommitFile,
    private readonly done: Map<number, number>,
    private readonly log: Logger,
  ) {
    for (const [agency, n] of store.recovered.perAgency) this.accepted.set(agency, n);
  }

  static async open(opts: {
    agencies: number;
    secrets: ReadonlyMap<number, string>;
    store: BetStore;
    sync: SyncMode;
    log: Logger;
  }): Promise<Lottery> {
    const journalPath = `${opts.store.path}.state`;
    let text = "";
    try {
      text = await readFile(journalPath, "latin1");
    } catch {
      text = "";
    }
    const done = parseJournal(text);
    const end = text.lastIndexOf("\r\n");
    const keep = end < 0 ? 0 : end + 2; // a torn last line is cut off
    const { fh, size } = await openAppend(journalPath, keep);
    const journal = new GroupCommitFile(fh, opts.sync, size);
    const lottery = new Lottery(opts.agencies, opts.secrets, opts.store, journal, done, opts.log);
    if (done.size > 0 || opts.store.recovered.rows > 0) {
      opts.log.info("recovery", "success", {
        bets: opts.store.recovered.rows,
        agencies_done: done.size,
      });
    }
    lottery.maybeDraw();
    return lottery;
  }

  committed(agency: number): number {
    return this.accepted.get(agency) ?? 0;
  }

  state(agency: number): number {
    if (this.winners) return AgencyState.DRAWN;
    return this.done.has(agency) ? AgencyState.DONE : AgencyState.OPEN;
  }

  isDone(agency: number): boolean {
    return this.done.has(agency);
  }

  get drawn(): boolean {
    return this.winners !== null;
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

  /**
   * Binds a connection to an agency. A previous connection of the same agency (a dropped link
   * the client has given up on) is told to go away first. Resolves with the committed position
   * once everything the agency had queued is durable.
   */
  async bind(agency: number, binding: Binding): Promise<number> {
    const old = this.bindings.get(agency);
    this.bindings.set(agency, binding);
    if (old && old !== binding) old.replaced();
    await this.store.flush();
    return this.committed(agency);
  }

  unbind(agency: number, binding: Binding): void {
    if (this.bindings.get(agency) === binding) this.bindings.delete(agency);
  }

  /** Claims positions [first, first+count) for the agency; a Fault when out of order. */
  claim(agency: number, first: number, count: number): Fault | null {
    if (this.done.has(agency)) {
      return fault(ErrorCode.AGENCY_FINISHED, `agency ${agency} already finished`);
    }
    const expected = this.committed(agency);
    if (first !== expected) {
      return fault(ErrorCode.OUT_OF_SEQUENCE, `batch starts at ${first}, expected ${expected}`);
    }
    this.accepted.set(agency, expected + count);
    return null;
  }

  /** Marks the agency finished after its `total` bets are durable; may trigger the draw. */
  async finish(agency: number, total: number): Promise<Fault | null> {
    const prev = this.done.get(agency);
    if (prev !== undefined) {
      return prev === total
        ? null
        : fault(ErrorCode.COUNT_MISMATCH, `agency finished with ${prev} bets, not ${total}`);
    }
    if (total !== this.committed(agency)) {
      return fault(
        ErrorCode.COUNT_MISMATCH,
        `agency says ${total} bets, server has ${this.committed(agency)}`,
      );
    }
    await this.store.flush();
    // re-check: a concurrent DONE of the same agency may have landed while we waited
    if (this.done.has(agency)) return null;
    await this.journal.append(Buffer.from(`done,${agency},${total}\r\n`, "latin1"));
    if (!this.done.has(agency)) this.done.set(agency, total);
    this.log.debug("agency_done", "success", { agency, bets: total });
    this.maybeDraw();
    return null;
  }

  private maybeDraw(): void {
    if (this.drawing || this.agencies === 0) return;
    for (let a = 1; a <= this.agencies; a++) if (!this.done.has(a)) return;
    this.drawing = this.runDraw();
    this.drawing.catch((err: unknown) => {
      this.log.error("sorteo", "fail", { error: String(err) });
    });
  }

  private async runDraw(): Promise<Winners> {
    await this.store.flush();
    const winners = new Map<number, string[]>();
    for (let a = 1; a <= this.agencies; a++) winners.set(a, []);
    await load_bets(this.store.path, (bet: Bet) => {
      if (has_won(bet)) winners.get(bet.agency)?.push(bet.document);
    });
    this.winners = winners;
    this.log.info("sorteo", "success");
    const listeners = [...this.drawListeners];
    this.drawListeners.clear();
    for (const l of listeners) l(winners);
    return winners;
  }

  /** The agency's winners if the draw happened, else null. */
  winnersOf(agency: number): readonly string[] | null {
    return this.winners ? (this.winners.get(agency) ?? []) : null;
  }

  /** Calls back once the draw is done (immediately if it already is). Returns an unsubscribe. */
  onDraw(cb: (w: Winners) => void): () => void {
    if (this.winners) {
      cb(this.winners);
      return () => undefined;
    }
    this.drawListeners.add(cb);
    return () => {
      this.drawListeners.delete(cb);
    };
  }

  async close(): Promise<void> {
    await this.journal.close();
  }
}
