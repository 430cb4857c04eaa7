// The bets file's readers: a lazily decoded row view, a callback scan over whole chunks (no object
// per row: what the draw uses) and an async iterator of Bet objects. All read in large chunks and
// never report an unterminated (torn) last row.

import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import type { Bet } from "../../../shared/src/bet.js";
import { CsvReader, type CsvRecord } from "../../../shared/src/csv.js";

/**
 * A view of the CSV record being parsed, read as a Bet. It is re-pointed at every row, so it is
 * only valid during the callback that receives it; `toBet()` copies it out. Fields are decoded
 * only when read: the draw touches `number` on every row and the rest only for winners.
 */
export class BetRowView implements Bet {
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
export async function readRows(path: string, onRecord: (rec: CsvRecord) => void): Promise<void> {
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
export class BetFileIterator implements AsyncIterableIterator<Bet> {
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
