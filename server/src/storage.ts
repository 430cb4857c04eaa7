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
  FIELD_COUNT,
  has_won,
} from "../../shared/src/bet.js";
import type { SyncMode } from "../../shared/src/config.js";
import { appendCsvField, CsvReader, encodeCsvRow } from "../../shared/src/csv.js";
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

function toBet(fields: string[]): Bet | null {
  if (fields.length !== 6) return null;
  const agency = Number(fields[0]);
  const number = Number(fields[5]);
  if (!Number.isInteger(agency) || !Number.isInteger(number) || fields[5] === "") return null;
  return {
    agency,
    first_name: fields[1]!,
    last_name: fields[2]!,
    document: fields[3]!,
    birthdate: fields[4]!,
    number,
  };
}

/** Streams the stored bets back in file order (as the course's load_bets). Bounded memory. */
export async function* load_bets(path = STORAGE_FILEPATH): AsyncGenerator<Bet> {
  const reader = new CsvReader();
  const stream = createReadStream(path, { highWaterMark: 256 * 1024 });
  const fields: string[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    reader.feed(chunk);
    for (let rec = reader.next(); rec; rec = reader.next()) {
      fields.length = 0;
      for (let f = 0; f < rec.fieldCount; f++) {
        fields.push(rec.bufs[f]!.toString("utf8", rec.starts[f], rec.ends[f]));
      }
      const bet = toBet(fields);
      if (bet) yield bet;
    }
  }
  const last = reader.end();
  if (last) {
    // An unterminated last row is a torn write: recovery removes it; never report it as a bet.
  }
}

/**
 * Encodes one bet, given as wire byte ranges, as a CSV row at out[pos]. `agencyPrefix` is the
 * agency's digits followed by a comma. The number is printed as an integer (as Python's
 * int -> str does: "0042" becomes "42"). Returns the new position.
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
  pos = appendCsvField(out, pos, buf, starts[base + F_FIRST]!, ends[base + F_FIRST]!);
  out[pos++] = COMMA;
  pos = appendCsvField(out, pos, buf, starts[base + F_LAST]!, ends[base + F_LAST]!);
  out[pos++] = COMMA;
  // documents and dates were validated as digits / YYYY-MM-DD: never need quoting
  for (let i = starts[base + F_DOCUMENT]!; i < ends[base + F_DOCUMENT]!; i++) out[pos++] = buf[i]!;
  out[pos++] = COMMA;
  for (let i = starts[base + F_BIRTHDATE]!; i < ends[base + F_BIRTHDATE]!; i++)
    out[pos++] = buf[i]!;
  out[pos++] = COMMA;
  if (number === 0) {
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

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * An append-only file with group commit: `append()` resolves once the bytes are durable (or
 * written, with sync "none"). Appends are written in call order.
 */
export class GroupCommitFile {
  private pending: Buffer[] = [];
  private waiters: Waiter[] = [];
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

  append(buf: Buffer): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      this.pending.push(buf);
      this.waiters.push({ resolve, reject });
      this.schedule();
    });
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
        for (const w of waiters) w.resolve();
      } catch (err) {
        this.failure = err instanceof Error ? err : new Error(String(err));
        for (const w of waiters) w.reject(this.failure);
        for (const w of this.waiters) w.reject(this.failure);
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

  /** Queues encoded rows; resolves when they are durable. */
  append(rows: Buffer): Promise<void> {
    return this.file.append(rows);
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
