// Bet storage: the course's contract (`store_bets`, `load_bets`, `has_won`) over a CSV file
// byte-compatible with Python's csv module (QUOTE_MINIMAL, CRLF rows), plus the server's
// durable, group-committed writer and crash recovery.
//
// Durability: a batch's promise resolves only after its bytes were written and fdatasync'ed.
// Group commit: while one write+sync is in flight, every batch that arrives (from any agency)
// queues and goes out in the next single writev+sync, so agencies share the cost of each sync.
// The sync runs on libuv's thread pool (FileHandle.datasync), never blocking the event loop.

import { createReadStream } from "node:fs";
import { type FileHandle, open, stat } from "node:fs/promises";
import {
  type Bet,
  F_BIRTHDATE,
  F_DOCUMENT,
  F_FIRST,
  F_LAST,
  F_NUMBER,
  FIELD_COUNT,
  has_won,
} from "../../shared/src/bet.js";
import type { SyncMode } from "../../shared/src/config.js";
import { appendCsvField, CsvReader, type CsvRecord, encodeCsvRow } from "../../shared/src/csv.js";
import { QuinielaError } from "../../shared/src/errors.js";
import type { Logger } from "../../shared/src/log.js";

export { has_won };
export const STORAGE_FILEPATH = "./bets.csv";
export const STORAGE_COLUMNS = [
  "agency",
  "first_name",
  "last_name",
  "document",
  "birthdate",
  "number",
];

const COMMA = 0x2c;
const CR = 0x0d;
const LF = 0x0a;

function betFields(bet: Bet): string[] {
  return [
    String(bet.agency),
    bet.first_name,
    bet.last_name,
    bet.document,
    bet.birthdate,
    String(bet.number),
  ];
}

/** Appends bets to the CSV file (as the course's store_bets) and makes them durable. */
export async function store_bets(bets: readonly Bet[], path = STORAGE_FILEPATH): Promise<void> {
  const fh = await open(path, "a");
  try {
    await fh.write(Buffer.concat(bets.map((b) => encodeCsvRow(betFields(b)))));
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/**
 * A view of the CSV record being parsed, read as a Bet. It is re-pointed at every row, so it is
 * only valid during the callback that receives it; `toBet()` copies it out. Fields are decoded
 * only when read: the draw touches `number` on every row and the rest only for winners.
 */
class BetRowView implements Bet {
  private rec: CsvRecord | null = null;

  point(rec: CsvRecord): boolean {
    if (rec.fieldCount !== 6) return false;
    this.rec = rec;
    return this.agency >= 0 && this.number >= 0;
  }

  private str(f: number, enc: "utf8" | "latin1"): string {
    const r = this.rec!;
    return r.bufs[f]!.toString(enc, r.starts[f], r.ends[f]);
  }
  private uint(f: number): number {
    const r = this.rec!;
    return parseUint(r.bufs[f]!, r.starts[f]!, r.ends[f]!);
  }

  get agency(): number {
    return this.uint(0);
  }
  get first_name(): string {
    return this.str(1, "utf8");
  }
  get last_name(): string {
    return this.str(2, "utf8");
  }
  get document(): string {
    return this.str(3, "latin1");
  }
  get birthdate(): string {
    return this.str(4, "latin1");
  }
  get number(): number {
    return this.uint(5);
  }

  toBet(): Bet {
    const { agency, first_name, last_name, document, birthdate, number } = this;
    return { agency, first_name, last_name, document, birthdate, number };
  }
}

function parseUint(buf: Uint8Array, s: number, e: number): number {
  if (e <= s || e - s > 15) return -1;
  let n = 0;
  for (let i = s; i < e; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/**
 * Reads the file in 1 MB chunks and hands every complete row to `onRecord`, in order. Two read
 * buffers are reused in turn (the reader may still need the previous one's tail), so a scan of
 * any size allocates nothing per chunk.
 */
async function readRows(path: string, onRecord: (rec: CsvRecord) => void): Promise<void> {
  const reader = new CsvReader();
  const bufs = [Buffer.allocUnsafe(1 << 20), Buffer.allocUnsafe(1 << 20)];
  const fh = await open(path, "r");
  try {
    for (let k = 0; ; k ^= 1) {
      const { bytesRead } = await fh.read(bufs[k]!, 0, bufs[k]!.length, null);
      if (bytesRead === 0) break;
      reader.feed(bufs[k]!.subarray(0, bytesRead));
      for (let rec = reader.next(); rec; rec = reader.next()) onRecord(rec);
    }
  } finally {
    await fh.close();
  }
  // An unterminated last row is a torn write: recovery removes it; it is never a bet.
}

/**
 * Iterates the bets file: each chunk is parsed at once into bets that are then handed out one
 * `next()` at a time (cheaper per item than an async generator).
 */
class BetFileIterator implements AsyncIterableIterator<Bet> {
  private readonly reader = new CsvReader();
  private readonly view = new BetRowView();
  private readonly chunks: AsyncIterator<Buffer>;
  private readonly stream: ReturnType<typeof createReadStream>;
  private batch: Bet[] = [];
  private i = 0;
  private ended = false;

  constructor(path: string) {
    this.stream = createReadStream(path, { highWaterMark: 1 << 20 });
    this.chunks = (this.stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Bet> {
    return this;
  }

  next(): Promise<IteratorResult<Bet>> {
    if (this.i < this.batch.length) {
      return Promise.resolve({ value: this.batch[this.i++]!, done: false });
    }
    return this.refill();
  }

  private async refill(): Promise<IteratorResult<Bet>> {
    while (!this.ended) {
      const r = await this.chunks.next();
      this.batch = [];
      this.i = 0;
      if (r.done) {
        this.ended = true;
      } else {
        this.reader.feed(r.value);
        for (let rec = this.reader.next(); rec; rec = this.reader.next()) {
          if (this.view.point(rec)) this.batch.push(this.view.toBet());
        }
      }
      if (this.batch.length > 0) return { value: this.batch[this.i++]!, done: false };
    }
    return { value: undefined, done: true };
  }

  async return(): Promise<IteratorResult<Bet>> {
    this.ended = true;
    this.stream.destroy();
    return { value: undefined, done: true };
  }
}

/**
 * Streams the stored bets back in file order (as the course's load_bets), in bounded memory.
 * - `load_bets(path)`: an async iterable of Bet objects;
 * - `load_bets(path, onBet)`: calls `onBet` for every bet and resolves with the count. The bet
 *   passed is a view valid only during the call (copy what you keep): this is the form the
 *   draw uses, as it allocates nothing per stored bet.
 */
export function load_bets(path?: string): AsyncIterableIterator<Bet>;
export function load_bets(path: string, onBet: (bet: Bet) => void): Promise<number>;
export function load_bets(
  path = STORAGE_FILEPATH,
  onBet?: (bet: Bet) => void,
): AsyncIterableIterator<Bet> | Promise<number> {
  if (!onBet) return new BetFileIterator(path);
  const view = new BetRowView();
  let n = 0;
  return readRows(path, (rec) => {
    if (view.point(rec)) {
      n++;
      onBet(view);
    }
  }).then(() => n);
}

/** Copies a name, quoting it only if needed; one pass in the common (unquoted) case. */
function appendName(out: Buffer, pos: number, src: Uint8Array, s: number, e: number): number {
  const from = pos;
  for (let i = s; i < e; i++) {
    const b = src[i]!;
    if (b === 0x2c || b === 0x22 || b === 0x0d || b === 0x0a) {
      return appendCsvField(out, from, src, s, e);
    }
    out[pos++] = b;
  }
  return pos;
}

/**
 * Encodes one bet, given as wire byte ranges, as a CSV row at out[pos]. `agencyPrefix` is the
 * agency's digits followed by a comma. The number is printed as an integer (as Python's
 * int -> str does: "0042" becomes "42"). Returns the new position.
 * Hand-written byte copies: this runs once per stored bet and dominated the server's profile.
 */
export function encodeBetRow(
  out: Buffer,
  pos: number,
  agencyPrefix: Uint8Array,
  buf: Uint8Array,
  starts: ArrayLike<number>,
  ends: ArrayLike<number>,
  base: number,
  number: number,
): number {
  for (let i = 0; i < agencyPrefix.length; i++) out[pos++] = agencyPrefix[i]!;
  pos = appendName(out, pos, buf, starts[base + F_FIRST]!, ends[base + F_FIRST]!);
  out[pos++] = COMMA;
  pos = appendName(out, pos, buf, starts[base + F_LAST]!, ends[base + F_LAST]!);
  out[pos++] = COMMA;
  // documents and dates were validated as digits / YYYY-MM-DD: never need quoting
  for (let i = starts[base + F_DOCUMENT]!, e = ends[base + F_DOCUMENT]!; i < e; i++)
    out[pos++] = buf[i]!;
  out[pos++] = COMMA;
  for (let i = starts[base + F_BIRTHDATE]!, e = i + 10; i < e; i++) out[pos++] = buf[i]!;
  out[pos++] = COMMA;
  const ns = starts[base + F_NUMBER]!;
  const ne = ends[base + F_NUMBER]!;
  if (buf[ns] !== 0x30 || ne - ns === 1) {
    for (let i = ns; i < ne; i++) out[pos++] = buf[i]!; // already canonical
  } else if (number === 0) {
    out[pos++] = 0x30;
  } else {
    let digits = 0;
    for (let n = number; n > 0; n = Math.floor(n / 10)) digits++;
    let p = pos + digits - 1;
    for (let n = number; n > 0; n = Math.floor(n / 10)) out[p--] = 0x30 + (n % 10);
    pos += digits;
  }
  out[pos++] = CR;
  out[pos++] = LF;
  return pos;
}

/** Upper bound of a row's encoded size for a bet whose fields total `fieldBytes` bytes. */
export function maxRowSize(fieldBytes: number): number {
  return 11 + 2 * fieldBytes + 4 + FIELD_COUNT + 2;
}

type Done = (err: Error | null) => void;

/**
 * An append-only file with group commit: an append is acknowledged once its bytes are durable
 * (or written, with sync "none"). Appends are written in call order.
 */
export class GroupCommitFile {
  private pending: Buffer[] = [];
  private waiters: Done[] = [];
  private writing = false;
  private scheduled = false;
  private failure: Error | null = null;
  private idle: Array<() => void> = [];
  /** Bytes durable on disk. */
  size: number;
  syncs = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly sync: SyncMode,
    initialSize: number,
  ) {
    this.size = initialSize;
  }

  /** Callback form, used on the hot path (no promise per batch). */
  appendCb(buf: Buffer, done: Done): void {
    if (this.failure) {
      done(this.failure);
      return;
    }
    this.pending.push(buf);
    this.waiters.push(done);
    this.schedule();
  }

  append(buf: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) =>
      this.appendCb(buf, (err) => (err ? reject(err) : resolve())),
    );
  }

  get queuedBytes(): number {
    let n = 0;
    for (const b of this.pending) n += b.length;
    return n;
  }

  /** Resolves when everything appended so far is durable. */
  flush(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (!this.writing && this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private schedule(): void {
    if (this.writing || this.scheduled) return;
    this.scheduled = true;
    // Let every frame already received in this event-loop turn join the same write.
    setImmediate(() => {
      this.scheduled = false;
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    while (this.pending.length > 0 && !this.failure) {
      const bufs = this.pending;
      const waiters = this.waiters;
      this.pending = [];
      this.waiters = [];
      try {
        let bytes = 0;
        for (let i = 0; i < bufs.length; i += 1024) {
          bytes += await writeAll(this.fh, bufs.slice(i, i + 1024));
        }
        if (this.sync === "fdatasync") await this.fh.datasync();
        else if (this.sync === "fsync") await this.fh.sync();
        this.syncs++;
        this.size += bytes;
        for (const w of waiters) w(null);
      } catch (err) {
        this.failure = err instanceof Error ? err : new Error(String(err));
        for (const w of waiters) w(this.failure);
        for (const w of this.waiters) w(this.failure);
        this.waiters = [];
        this.pending = [];
      }
    }
    this.writing = false;
    const idle = this.idle;
    this.idle = [];
    for (const r of idle) r();
  }

  async close(): Promise<void> {
    await this.flush().catch(() => undefined);
    await this.fh.close();
  }
}

/** writev until every byte is written (a regular file may still take a short write). */
async function writeAll(fh: FileHandle, bufs: Buffer[]): Promise<number> {
  let total = 0;
  for (const b of bufs) total += b.length;
  let written = 0;
  let rest = bufs;
  while (written < total) {
    const { bytesWritten } = await fh.writev(rest);
    written += bytesWritten;
    if (written < total) {
      // drop fully written buffers and cut the partly written one
      let skip = bytesWritten;
      const next: Buffer[] = [];
      for (const b of rest) {
        if (skip >= b.length) {
          skip -= b.length;
          continue;
        }
        next.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
      rest = next;
    }
  }
  return total;
}

/** Bump allocator for encoded rows: batches are encoded in place into large segments. */
export class SegmentAllocator {
  private seg: Buffer;
  private pos = 0;

  constructor(private readonly segmentSize = 1 << 20) {
    this.seg = Buffer.allocUnsafe(segmentSize);
  }

  /** A buffer with at least `bytes` free from `start`. */
  reserve(bytes: number): { buf: Buffer; start: number } {
    if (this.pos + bytes > this.seg.length) {
      this.seg = Buffer.allocUnsafe(Math.max(this.segmentSize, bytes));
      this.pos = 0;
    }
    return { buf: this.seg, start: this.pos };
  }

  /** Marks seg[start..end) as used and returns it. */
  take(end: number): Buffer {
    const out = this.seg.subarray(this.pos, end);
    this.pos = end;
    return out;
  }
}

export interface RecoveryReport {
  rows: number;
  /** Offset of a complete row that is not a bet row (corruption, not a torn write), or -1. */
  corruptAt: number;
  truncatedBytes: number;
  perAgency: Map<number, number>;
}

/**
 * Scans the bets file: counts complete rows per agency and finds where the last complete row
 * ends. Anything after it is a torn write from a crash and is cut off by the caller.
 */
export async function scanBets(
  path: string,
): Promise<RecoveryReport & { goodBytes: number; size: number }> {
  const perAgency = new Map<number, number>();
  let size = 0;
  try {
    size = (await stat(path)).size;
  } catch {
    return { rows: 0, corruptAt: -1, truncatedBytes: 0, perAgency, goodBytes: 0, size: 0 };
  }
  const reader = new CsvReader();
  let goodBytes = 0;
  let rows = 0;
  let corruptAt = -1;
  const stream = createReadStream(path, { highWaterMark: 256 * 1024 });
  // Only the end of the file can be torn (an interrupted append); a complete row that is not a
  // bet row anywhere is corruption, reported so the server refuses to start instead of guessing.
  scan: for await (const chunk of stream as AsyncIterable<Buffer>) {
    reader.feed(chunk);
    for (let rec = reader.next(); rec; rec = reader.next()) {
      const agency =
        rec.fieldCount === 6
          ? Number(rec.bufs[0]!.toString("latin1", rec.starts[0], rec.ends[0]))
          : Number.NaN;
      if (!Number.isInteger(agency) || agency < 0) {
        corruptAt = rec.startOffset;
        break scan;
      }
      perAgency.set(agency, (perAgency.get(agency) ?? 0) + 1);
      rows++;
      goodBytes = rec.endOffset;
    }
  }
  stream.destroy();
  return { rows, corruptAt, truncatedBytes: size - goodBytes, perAgency, goodBytes, size };
}

/** Opens (creating if needed) an append-only file, first cutting it to `keepBytes`. */
export async function openAppend(
  path: string,
  keepBytes: number | null,
): Promise<{ fh: FileHandle; size: number }> {
  const fh = await open(path, "a+");
  let size = (await fh.stat()).size;
  if (keepBytes !== null && keepBytes < size) {
    await fh.truncate(keepBytes);
    await fh.datasync();
    size = keepBytes;
  }
  return { fh, size };
}

/** The server's bet store: recovery on open, durable group-committed appends. */
export class BetStore {
  readonly alloc = new SegmentAllocator();

  private constructor(
    readonly path: string,
    private readonly file: GroupCommitFile,
    readonly recovered: RecoveryReport,
  ) {}

  static async open(path: string, sync: SyncMode, log: Logger): Promise<BetStore> {
    const scan = await scanBets(path);
    if (scan.corruptAt >= 0) {
      throw new QuinielaError(
        "CORRUPT_STORAGE",
        `${path}: byte ${scan.corruptAt} starts a row that is not a bet; refusing to start (inspect or move the file)`,
      );
    }
    const { fh, size } = await openAppend(path, scan.goodBytes);
    if (scan.truncatedBytes > 0) {
      log.warn("storage_recovery", "success", {
        path,
        repaired_bytes: scan.truncatedBytes,
        rows: scan.rows,
      });
    }
    const store = new BetStore(path, new GroupCommitFile(fh, sync, size), scan);
    return store;
  }

  /** Queues encoded rows; `done` is called once they are durable. */
  append(rows: Buffer, done: (err: Error | null) => void): void {
    this.file.appendCb(rows, done);
  }

  flush(): Promise<void> {
    return this.file.flush();
  }

  get syncs(): number {
    return this.file.syncs;
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}
