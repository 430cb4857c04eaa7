// The bets file's readers: a lazily decoded row view, a callback scan over whole chunks (no object
// per row: what the draw uses) and an async iterator of Bet objects. All read in large chunks and
// never report an unterminated (torn) last row.

import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { COMMA, CR, LF, QUOTE, ZERO } from "../../../shared/src/ascii.js";
import { type Bet, parseDigits } from "../../../shared/src/bet.js";
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

/** Up to 15 digits: any integer column of a row. */
const parseUint = (buf: Uint8Array, s: number, e: number): number => parseDigits(buf, s, e, 15);

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

/**
 * The draw's scan of the bets file: rows that cannot win are rejected by their number without
 * being parsed, or even visited. The scan searches the bytes for the number's digits (native
 * `indexOf`, at memchr speed) and only where they end a row's last field — after a comma and
 * optional zeros, before the row's line end, outside quotes — parses that row (CsvReader) and
 * hands it to `onBet` as a view valid during the call, where has_won decides. Quote parity is
 * tracked by hopping from quote to quote, so quoted names (which may hold commas, line breaks
 * and the digits) cost only where they occur. An unterminated last row (a torn write) is
 * skipped, as everywhere. Resolves with the number of rows handed to `onBet`.
 * Hand-written: parsing every row (load_bets) was the draw's whole cost (5M bets: ≈ 0.7 s of
 * CPU here; a byte-by-byte row splitter still 0.6 s).
 */
export async function scanByNumber(
  path: string,
  number: number,
  onBet: (bet: Bet) => void,
  bufferBytes = 1 << 20,
): Promise<number> {
  if (!Number.isSafeInteger(number) || number < 1) throw new RangeError(`bad number ${number}`);
  const needle = Buffer.from(String(number), "latin1");
  const buf = Buffer.allocUnsafe(bufferBytes);
  const reader = new CsvReader();
  const view = new BetRowView();
  let have = 0;
  let found = 0;
  const fh = await open(path, "r");
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, have, buf.length - have, null);
      if (bytesRead === 0) break;
      const end = have + bytesRead;
      let safe = 0; // a row start: everything before it is settled, outside quotes
      for (let m = buf.indexOf(needle, 0); m >= 0; m = buf.indexOf(needle, m + 1)) {
        const t = m + needle.length;
        if (t >= end) break;
        const rowEnd =
          buf[t] === LF ? t : buf[t] === CR && t + 1 < end && buf[t + 1] === LF ? t + 1 : -1;
        if (rowEnd < 0) continue;
        let j = m - 1;
        while (j >= safe && buf[j] === ZERO) j--;
        if (j < safe || buf[j] !== COMMA || quoteParity(buf, safe, m)) continue;
        // The row starts after the last line end outside quotes before it.
        let rowStart = buf.lastIndexOf(LF, j) + 1;
        if (rowStart < safe) rowStart = safe;
        const q = buf.indexOf(QUOTE, rowStart);
        if (q >= 0 && q < j) rowStart = lastRowStart(buf, safe, j);
        reader.feed(buf.subarray(rowStart, rowEnd + 1));
        const rec = reader.next();
        if (rec && view.point(rec)) {
          found++;
          onBet(view);
        }
        // Everything up to rowEnd is settled: restart parity there (outside quotes).
        safe = rowEnd + 1;
        m = rowEnd;
      }
      // Carry the incomplete last row: from the last line end outside quotes.
      let carry = safe;
      // (lastIndexOf with a negative offset would count from the end: stop at 0)
      for (
        let lf = buf.lastIndexOf(LF, end - 1);
        lf >= safe;
        lf = lf > 0 ? buf.lastIndexOf(LF, lf - 1) : -1
      ) {
        if (!quoteParity(buf, safe, lf)) {
          carry = lf + 1;
          break;
        }
      }
      if (carry === 0 && end === buf.length)
        throw new Error(`${path}: a row longer than ${end} bytes`);
      buf.copyWithin(0, carry, end);
      have = end - carry;
    }
  } finally {
    await fh.close();
  }
  return found;
}

/** Whether position `pos` is inside quotes, counting from the row start `from`. */
function quoteParity(buf: Buffer, from: number, pos: number): boolean {
  let quoted = false;
  for (let q = buf.indexOf(QUOTE, from); q >= 0 && q < pos; q = buf.indexOf(QUOTE, q + 1))
    quoted = !quoted;
  return quoted;
}

/** The start of the row holding position `pos`, scanning forward from the row start `from`. */
function lastRowStart(buf: Buffer, from: number, pos: number): number {
  let start = from;
  let quoted = false;
  for (let i = from; i < pos; i++) {
    const c = buf[i]!;
    if (c === QUOTE) quoted = !quoted;
    else if (c === LF && !quoted) start = i + 1;
  }
  return start;
}
