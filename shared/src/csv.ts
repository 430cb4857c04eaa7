// CSV over bytes, compatible with Python's csv module (excel dialect, QUOTE_MINIMAL).
// Hand-written on purpose: agencies parse and the server writes millions of rows, and working on
// byte ranges (no string per field) is what keeps both sides fast and allocation-free; the
// benchmark (`npm run bench`) shows the hot paths. Compatibility both ways is tested against
// python3's csv module.

import { COMMA, CR, LF, QUOTE } from "./ascii.js";

/** True when Python's QUOTE_MINIMAL would quote this field. */
export function needsQuoting(src: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = src[i]!;
    if (b === COMMA || b === QUOTE || b === CR || b === LF) return true;
  }
  return false;
}

/** Appends a field at out[pos], quoted as QUOTE_MINIMAL does; returns the new position. */
export function appendCsvField(
  out: Uint8Array,
  pos: number,
  src: Uint8Array,
  start: number,
  end: number,
): number {
  if (!needsQuoting(src, start, end)) {
    for (let i = start; i < end; i++) out[pos++] = src[i]!;
    return pos;
  }
  out[pos++] = QUOTE;
  for (let i = start; i < end; i++) {
    const b = src[i]!;
    if (b === QUOTE) out[pos++] = QUOTE;
    out[pos++] = b;
  }
  out[pos++] = QUOTE;
  return pos;
}

/** Worst-case encoded size of a field of n bytes. */
export function maxEncodedFieldSize(n: number): number {
  return 2 * n + 2;
}

/** Encodes one row of strings as Python's csv.writer would (CRLF terminator). */
export function encodeCsvRow(fields: readonly string[]): Buffer {
  // Python quotes a lone empty field, or the row would read back as a blank line.
  if (fields.length === 1 && fields[0] === "") return Buffer.from('""\r\n', "latin1");
  const bufs = fields.map((f) => Buffer.from(f, "utf8"));
  const out = Buffer.allocUnsafe(bufs.reduce((n, b) => n + maxEncodedFieldSize(b.length) + 1, 2));
  let pos = 0;
  bufs.forEach((b, i) => {
    if (i > 0) out[pos++] = COMMA;
    pos = appendCsvField(out, pos, b, 0, b.length);
  });
  out[pos++] = CR;
  out[pos++] = LF;
  return out.subarray(0, pos);
}

export const MAX_FIELDS = 32;

/**
 * One parsed record. Field i is bufs[i][starts[i] .. ends[i]); unquoted fields point into the
 * input chunk (zero copy), quoted ones into a scratch buffer holding the unescaped bytes.
 * The arrays are reused by the next `next()` call: copy what you keep.
 */
export interface CsvRecord {
  fieldCount: number;
  bufs: Buffer[];
  starts: Int32Array;
  ends: Int32Array;
  /** Absolute byte offsets of the record in the stream: [startOffset, endOffset). */
  startOffset: number;
  endOffset: number;
  /** 1-based line number where the record starts. */
  line: number;
  /** False only for a last record with no line terminator (see `end()`). */
  terminated: boolean;
}

/** Streaming record reader: `feed()` chunks, then call `next()` until it returns null. */
export class CsvReader {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private base: number; // absolute offset of buf[0]
  private line: number;
  private scratch = Buffer.allocUnsafe(4096);
  private work = Buffer.alloc(0);
  private scratchLen = 0;
  private readonly rec: CsvRecord;

  constructor(startOffset = 0, startLine = 1) {
    this.base = startOffset;
    this.line = startLine;
    this.rec = {
      fieldCount: 0,
      bufs: new Array<Buffer>(MAX_FIELDS),
      starts: new Int32Array(MAX_FIELDS),
      ends: new Int32Array(MAX_FIELDS),
      startOffset: 0,
      endOffset: 0,
      line: 0,
      terminated: true,
    };
  }

  /** Absolute offset just after the last record returned. */
  get offset(): number {
    return this.base + this.pos;
  }

  /** Bytes fed but not yet returned as records (an incomplete record). */
  get pendingBytes(): number {
    return this.buf.length - this.pos;
  }

  /** 1-based line number of the next record (or blank line) to read. */
  get lineNumber(): number {
    return this.line;
  }

  /**
   * Reads on from `buf[pos]`, which is at absolute offset `base + pos` and on line `line`: for a
   * caller that keeps its own buffer (the agency's scanner), no copy. Forgets earlier input.
   */
  resetAt(buf: Buffer, pos: number, base: number, line: number): void {
    this.buf = buf;
    this.pos = pos;
    this.base = base;
    this.line = line;
  }

  /**
   * Adds input. Records returned earlier may point into the previous buffer, which this call
   * may overwrite: consume (copy) each record before feeding more.
   */
  feed(chunk: Buffer): void {
    if (this.pos >= this.buf.length) {
      this.base += this.buf.length;
      this.buf = chunk;
    } else {
      // An incomplete record spans chunks: join its start and the new chunk in a work buffer
      // that is reused, so streaming a large file does not allocate a buffer per chunk.
      const restLen = this.buf.length - this.pos;
      const need = restLen + chunk.length;
      if (this.work.length < need) {
        const grown = Buffer.allocUnsafe(Math.max(need, this.work.length * 2));
        this.buf.copy(grown, 0, this.pos);
        this.work = grown;
      } else {
        this.buf.copy(this.work, 0, this.pos); // may overlap when buf is work: copy is memmove
      }
      chunk.copy(this.work, restLen);
      this.base += this.pos;
      this.buf = this.work.subarray(0, need);
    }
    this.pos = 0;
  }

  /** Next complete record, or null when more bytes are needed. */
  next(): CsvRecord | null {
    for (;;) {
      const r = this.parse(false);
      if (r !== "empty") return r;
    }
  }

  /** At end of input: the last record if it had no terminator (or null). */
  end(): CsvRecord | null {
    for (;;) {
      const r = this.parse(true);
      if (r !== "empty") return r;
    }
  }

  private ensureScratch(extra: number): void {
    if (this.scratchLen + extra <= this.scratch.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.scratch.length * 2, this.scratchLen + extra));
    this.scratch.copy(grown, 0, 0, this.scratchLen);
    // Earlier quoted fields of this record point into the old scratch: repoint them.
    for (let f = 0; f < this.rec.fieldCount; f++) {
      if (this.rec.bufs[f] === this.scratch) this.rec.bufs[f] = grown;
    }
    this.scratch = grown;
  }

  private parse(eof: boolean): CsvRecord | null | "empty" {
    const buf = this.buf;
    const len = buf.length;
    const start = this.pos;
    if (start >= len) return null;
    const rec = this.rec;
    let i = start;
    let lines = 0;
    let nf = 0;
    this.scratchLen = 0;
    // Empty line: Python yields [] for it; skip it.
    if (buf[i] === LF || buf[i] === CR) {
      if (buf[i] === CR && i + 1 < len && buf[i + 1] === LF) i++;
      else if (buf[i] === CR && i + 1 >= len && !eof) return null;
      this.pos = i + 1;
      this.line++;
      return "empty";
    }
    for (;;) {
      // start of a field
      if (nf >= MAX_FIELDS) nf = MAX_FIELDS - 1; // overflowing fields collapse; count stays high
      if (i < len && buf[i] === QUOTE) {
        // quoted field: unescape into scratch
        this.ensureScratch(len - i);
        const sStart = this.scratchLen;
        let j = i + 1;
        let closed = false;
        for (;;) {
          if (j >= len) break;
          const b = buf[j]!;
          if (b === QUOTE) {
            if (j + 1 < len && buf[j + 1] === QUOTE) {
              this.scratch[this.scratchLen++] = QUOTE;
              j += 2;
              continue;
            }
            if (j + 1 >= len && !eof) break; // cannot tell "" from closing quote yet
            closed = true;
            j++;
            break;
          }
          if (b === LF) lines++;
          this.scratch[this.scratchLen++] = b;
          j++;
        }
        if (!closed) {
          if (!eof) return null;
          // unterminated quote at end of input
          rec.bufs[nf] = this.scratch;
          rec.starts[nf] = sStart;
          rec.ends[nf] = this.scratchLen;
          nf++;
          return this.finish(start, len, nf, lines, false);
        }
        // after the closing quote, Python (non-strict) appends anything up to the delimiter
        while (j < len && buf[j] !== COMMA && buf[j] !== LF && buf[j] !== CR) {
          this.scratch[this.scratchLen++] = buf[j]!;
          j++;
        }
        rec.bufs[nf] = this.scratch;
        rec.starts[nf] = sStart;
        rec.ends[nf] = this.scratchLen;
        nf++;
        i = j;
      } else {
        let j = i;
        while (j < len) {
          const b = buf[j]!;
          if (b === COMMA || b === LF || b === CR) break;
          j++;
        }
        rec.bufs[nf] = buf;
        rec.starts[nf] = i;
        rec.ends[nf] = j;
        nf++;
        i = j;
      }
      if (i >= len) {
        if (!eof) return null;
        return this.finish(start, len, nf, lines, false);
      }
      const b = buf[i]!;
      if (b === COMMA) {
        i++;
        if (i >= len) {
          if (!eof) return null;
          rec.bufs[nf] = buf;
          rec.starts[nf] = i;
          rec.ends[nf] = i;
          nf++;
          return this.finish(start, len, nf, lines, false);
        }
        continue;
      }
      // line terminator
      if (b === CR) {
        if (i + 1 < len) {
          if (buf[i + 1] === LF) i++;
        } else if (!eof) {
          return null; // a LF may follow in the next chunk
        }
      }
      return this.finish(start, i + 1, nf, lines + 1, true);
    }
  }

  private finish(
    start: number,
    end: number,
    nf: number,
    lines: number,
    terminated: boolean,
  ): CsvRecord {
    const rec = this.rec;
    rec.fieldCount = nf;
    rec.startOffset = this.base + start;
    rec.endOffset = this.base + end;
    rec.line = this.line;
    rec.terminated = terminated;
    this.line += lines;
    this.pos = end;
    return rec;
  }
}
