// The file store: the course's bets.csv (rows exactly as Python's csv module writes them) plus the
// journal bets.csv.state (`done,AGENCY,TOTAL` lines). One server process owns the files, so the
// positions the lottery counts are the truth and a storage error is fatal (the process exits and
// the agencies resume against its restart). Writes are group-committed (group-commit.ts); on open
// the files are recovered (recovery.ts).

import { Action } from "../../../shared/src/actions.js";
import { type Bet, has_won, LOTTERY_WINNER_NUMBER } from "../../../shared/src/bet.js";
import type { SyncMode } from "../../../shared/src/config.js";
import { ErrorCode, FatalCode, fault, QuinielaError } from "../../../shared/src/errors.js";
import type { Logger } from "../../../shared/src/log.js";
import { checkBatch, isRefusal } from "./batch-check.js";
import { load_bets } from "./course.js";
import { GroupCommitFile, openAppend } from "./group-commit.js";
import { scanByNumber } from "./readers.js";
import { type RecoveryReport, readJournal, scanBets } from "./recovery.js";
import { agencyPrefix, encodeBatchCsv, maxRowsSize, primeEncoder } from "./rows.js";
import { SegmentAllocator } from "./segments.js";
import type {
  AgencyStatus,
  AppendDone,
  BetStore,
  Claim,
  DoneResult,
  DrawResult,
  Fault,
  Refusal,
  StoreSnapshot,
  WireBatch,
} from "./types.js";

export interface FileStoreOptions {
  path: string;
  sync: SyncMode;
  /** Agencies 1..N the draw waits for. */
  agencies: number;
  log: Logger;
  /** A write or sync failed: the store is unusable from now on. */
  onFatal?: (err: Error) => void;
}

const storageFault = (err: unknown): Fault =>
  fault(ErrorCode.STORAGE_FAILURE, `storage failure: ${(err as Error)?.message ?? String(err)}`);

/** Why the one-pass encoder refused a batch: the bet-by-bet check names the rule and the bet. */
function diagnose(payload: Buffer, today: number): Refusal {
  const r = checkBatch(payload, today);
  if (isRefusal(r)) return r;
  // Unreachable while the two agree (a property test holds them together); refuse, never store.
  return { fault: fault(ErrorCode.MALFORMED, "batch refused by the row encoder"), index: -1 };
}

export class FileStore implements BetStore {
  readonly kind = "file";
  readonly exclusive = true;
  readonly initial: StoreSnapshot;
  private readonly alloc = new SegmentAllocator(1 << 20, true);
  /** Durable bets per agency. */
  private readonly committed: Map<number, number>;
  private readonly done: Map<number, number>;
  private readonly doneWrites = new Map<number, Promise<void>>();
  private winners: Map<number, string[]> | null = null;

  private constructor(
    readonly path: string,
    private readonly file: GroupCommitFile,
    private readonly journal: GroupCommitFile,
    readonly recovered: RecoveryReport,
    done: Map<number, number>,
    private readonly opts: FileStoreOptions,
  ) {
    this.committed = new Map(recovered.perAgency);
    this.done = done;
    this.initial = {
      positions: new Map(this.committed),
      done: new Map(done),
      bets: recovered.rows,
    };
  }

  static async open(opts: FileStoreOptions): Promise<FileStore> {
    const { path, log } = opts;
    const scan = await scanBets(path);
    if (scan.corruptAt >= 0) {
      throw new QuinielaError(
        FatalCode.CORRUPT_STORAGE,
        `${path}: byte ${scan.corruptAt} starts a row that is not a bet; refusing to start (inspect or move the file)`,
      );
    }
    const { fh, size } = await openAppend(path, scan.goodBytes);
    primeEncoder();
    if (scan.truncatedBytes > 0) {
      log.warn(Action.STORAGE_RECOVERY, "success", {
        path,
        repaired_bytes: scan.truncatedBytes,
        rows: scan.rows,
      });
    }
    const journalPath = `${path}.state`;
    const j = await readJournal(journalPath);
    const jf = await openAppend(journalPath, j.keepBytes);
    return new FileStore(
      path,
      new GroupCommitFile(fh, opts.sync, size),
      new GroupCommitFile(jf.fh, opts.sync, jf.size),
      scan,
      j.done,
      opts,
    );
  }

  append(batch: WireBatch, today: number, claim: Claim, done: AppendDone): Refusal | null {
    const { agency, count, payload } = batch;
    const prefix = agencyPrefix(agency);
    // Encoded in place into the allocator's segment; taken only once the position is claimed.
    const { buf, start } = this.alloc.reserve(maxRowsSize(payload.length, count, prefix.length));
    const end = encodeBatchCsv(payload, buf, start, prefix, today);
    if (end < 0) return diagnose(payload, today);
    const claimed = claim();
    if (claimed) return { fault: claimed, index: -1 };
    const rows = this.alloc.lease(end);
    this.appendRows(rows, (err) => {
      this.alloc.release(rows);
      if (err) {
        done(storageFault(err));
        return;
      }
      this.committed.set(agency, (this.committed.get(agency) ?? 0) + count);
      done(null);
    });
    return null;
  }

  /** Appends rows already encoded (tests, tools); `done` runs once they are durable. */
  appendRows(rows: Buffer, done: (err: Error | null) => void): void {
    this.file.appendCb(rows, (err) => {
      if (err) this.opts.onFatal?.(err);
      done(err);
    });
  }

  flush(): Promise<void> {
    return this.file.flush();
  }

  async status(agency: number): Promise<AgencyStatus | Fault> {
    try {
      await this.file.flush();
    } catch (err) {
      return storageFault(err);
    }
    return {
      committed: this.committed.get(agency) ?? 0,
      done: this.done.has(agency),
      drawn: this.winners !== null,
    };
  }

  private allDone(): boolean {
    for (let a = 1; a <= this.opts.agencies; a++) if (!this.done.has(a)) return false;
    return true;
  }

  private doneAnswer(agency: number, total: number): DoneResult {
    const prev = this.done.get(agency)!;
    return prev === total
      ? { allDone: this.allDone() }
      : fault(ErrorCode.COUNT_MISMATCH, `agency finished with ${prev} bets, not ${total}`);
  }

  async markDone(agency: number, total: number): Promise<DoneResult> {
    if (this.done.has(agency)) return this.doneAnswer(agency, total);
    try {
      await this.file.flush();
      const committed = this.committed.get(agency) ?? 0;
      if (this.done.has(agency)) return this.doneAnswer(agency, total);
      if (total !== committed) {
        return fault(
          ErrorCode.COUNT_MISMATCH,
          `agency says ${total} bets, server has ${committed}`,
        );
      }
      // A concurrent DONE of the same agency waits for the same journal line.
      let write = this.doneWrites.get(agency);
      if (!write) {
        write = this.journal
          .append(Buffer.from(`done,${agency},${total}\r\n`, "latin1"))
          .then(() => void this.done.set(agency, total));
        this.doneWrites.set(agency, write);
      }
      await write;
    } catch (err) {
      this.opts.onFatal?.(err as Error);
      return storageFault(err);
    }
    return this.doneAnswer(agency, total);
  }

  /** The draw is decided from the file, so a restarted server decides it again, the same way. */
  async draw(): Promise<DrawResult> {
    if (this.winners) return { ran: false };
    if (this.opts.agencies === 0 || !this.allDone()) return null;
    try {
      await this.file.flush();
      const winners = new Map<number, string[]>();
      for (let a = 1; a <= this.opts.agencies; a++) winners.set(a, []);
      // Rows that cannot win are rejected by their number unparsed; has_won decides the rest.
      await scanByNumber(this.path, LOTTERY_WINNER_NUMBER, (bet: Bet) => {
        if (has_won(bet)) winners.get(bet.agency)?.push(bet.document);
      });
      if (this.winners) return { ran: false };
      this.winners = winners;
      return { ran: true };
    } catch (err) {
      return storageFault(err);
    }
  }

  async winnersOf(agency: number): Promise<readonly string[] | Fault> {
    if (!this.winners) return fault(ErrorCode.STORAGE_FAILURE, "the draw has not been run");
    return this.winners.get(agency) ?? [];
  }

  async load_bets(onBet: (bet: Bet) => void): Promise<number> {
    await this.file.flush();
    return load_bets(this.path, onBet);
  }

  watch(): void {
    // One process owns the files: nothing changes behind its back.
  }

  async close(): Promise<void> {
    await this.file.close();
    this.opts.log.info(Action.CLOSE_FILE, "success", { path: this.path });
    await this.journal.close();
    this.opts.log.info(Action.CLOSE_FILE, "success", { path: `${this.path}.state` });
  }
}
