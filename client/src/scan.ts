// The agency's data file turned into BATCH frames in one pass over its bytes (issue 10).
//
// The file is read into one buffer reused for the whole file. For each row, the fast path finds
// the five fields, copies their bytes straight into the batch being built and checks them on the
// way: the copy of the document and of the number stops at anything but a digit, the date is
// checked from the copied bytes with bet.ts's calendarKey and the lengths with bet.ts's
// acceptsBet. No record object, array, string or closure per row.
//
// Whatever the fast path does not take as a plain valid row goes, one record at a time, to the
// slow path, which is what the agency did before this module: the CSV reader (quoted fields, ""
// escapes, line breaks inside quotes, blank lines, a last line without terminator) and
// validateBetFields, which gives invalid rows their code and reason. So rows get the same
// verdict, line number, code and batch boundaries as before; test/property/scan.property.test.ts
// compares the two paths on generated files and on the course's.
//
// Why hand-written (callgrind, the course's agency-1, 26,936 bets; a bare `node -e 0` is 503M
// instructions): the old path cost 1,024M, about 16,000 instructions per bet over an empty
// file. The course's files are small: much of that ran in the interpreter and baseline code
// (an inline-cache call per byte read or written) or went into TurboFan compiling the dozen
// small functions a row was spread over (CsvReader.parse, BatchBuilder.add, validateBetFields,
// parseDateBytes, ...: 77M instructions of compiler work on agency-5's 991 bets, 170M on
// agency-1). Here one function with one loop does it, four bytes per iteration (see `fast`).

import { isUtf8 } from "node:buffer";
import { close, open, read } from "node:fs";
import { COMMA, CR, LF, QUOTE } from "../../shared/src/ascii.js";
import {
  acceptsBet,
  calendarKey,
  FIELD_COUNT,
  MAX_FIELD_BYTES,
  validateBetFields,
} from "../../shared/src/bet.js";
import { CsvReader, type CsvRecord } from "../../shared/src/csv.js";
import { ErrorCode, type Fault, fault } from "../../shared/src/errors.js";
import { HEADER_SIZE, MAX_FRAME } from "../../shared/src/protocol/frame.js";
import {
  BATCH_PREFIX,
  BATCH_STAGING_BYTES,
  BatchBuilder,
} from "../../shared/src/protocol/messages.js";

/** What `step()` stopped at. */
export const Step = {
  /** The builder holds a batch to send now: full, or the next row does not fit in its frame. */
  BATCH: 1,
  /** A row is invalid: see `invalid`, `invalidLine`, `invalidStart`, `invalidEnd`. */
  INVALID: 2,
  /** The buffered bytes are used up: `await fill()`, then step again. */
  NEED_DATA: 3,
  /** The whole file was read; the builder may hold a last, partial batch. */
  END: 4,
} as const;
export type StepValue = (typeof Step)[keyof typeof Step];

const MORE = 0; // slow path: a record was taken (or skipped), go on

// What the fast path stopped at: a row it leaves to the slow path (or the end of its region),
// a full batch, or its quota of rows for one call.
const STOPPED = 0;
const FULL = 1;
const PAUSED = 2;
/**
 * Rows the fast path takes per call. Short calls keep V8 from compiling the function a second
 * time: a call still running unoptimized code when its optimized code is ready asks for an
 * on-stack replacement (another TurboFan compile, about 20M instructions). Under callgrind,
 * where the compiler thread waits for the main one, 100-row calls did that in about one run of
 * three on agency-1.
 */
const ROWS_PER_CALL = 16;

function readAt(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

/** The staging area's first bytes hold the batch; the file is read in after it (see `mem`). */
const STAGE = BATCH_STAGING_BYTES;
/** Bytes after the read area, so that a word read at the last byte stays inside the memory. */
const PAD = 8;
/** The fast path gives up on a row whose bytes would be staged past this (a runaway field). */
const STAGE_LIMIT = STAGE - 8;

export class BetScanner {
  /**
   * One ArrayBuffer holds the staging area of the batch being built, [0, STAGE), and the read
   * area, [STAGE, STAGE + capacity): the fast path reads and writes both through one DataView
   * and one Uint8Array (one object to check, not two).
   */
  private mem!: ArrayBuffer;
  private u8!: Uint8Array;
  private dv!: DataView;
  /** The read area: bytes [0, filled) are the file's bytes from offset `base`. */
  private buf!: Buffer;
  private view!: Buffer;
  readonly builder: BatchBuilder;
  private filled = 0;
  private base = 0;
  /** Next byte of `buf` to scan (a record starts there) and its line number. */
  private pos = 0;
  private line = 1;
  /** The fast path runs on buf[pos..stop): whole lines of valid UTF-8 (ending with LF). */
  private stop = 0;
  private eof = false;
  private skip = 0;
  private fd: number | null = null;
  private reading = false;
  private closeAfterRead: number | null = null;
  private readonly reader = new CsvReader();

  /** File offset and line where the batch being built starts (to rebuild it from the file). */
  batchStart = 0;
  batchStartLine = 1;
  /** Just after the last row added to the batch (its end, for resuming after it). */
  lastEnd = 0;
  lastEndLine = 1;

  /** The row of the last INVALID step. */
  invalid: Fault | null = null;
  invalidLine = 0;
  invalidStart = 0;
  invalidEnd = 0;

  /** Today as yyyymmdd (birthdates after it are invalid), set by `open`. */
  private today = 0;

  constructor(
    private readonly maxAmount: number,
    chunkBytes: number,
  ) {
    this.allocate(Math.max(chunkBytes, 16));
    this.builder = new BatchBuilder(Buffer.from(this.mem, 0, STAGE));
  }

  /** (Re)allocates the memory with a read area of `capacity` bytes, keeping staged and unread bytes. */
  private allocate(capacity: number): void {
    const mem = new ArrayBuffer(STAGE + capacity + PAD);
    const u8 = new Uint8Array(mem);
    if (this.mem !== undefined) {
      u8.set(this.u8.subarray(0, STAGE), 0);
      u8.set(this.u8.subarray(STAGE + this.pos, STAGE + this.filled), STAGE);
      this.filled -= this.pos;
      this.base += this.pos;
      this.pos = this.stop = 0;
      this.builder.data = Buffer.from(mem, 0, STAGE);
    }
    this.mem = mem;
    this.u8 = u8;
    this.dv = new DataView(mem);
    this.buf = Buffer.from(mem, STAGE, capacity);
    this.view = this.buf.subarray(0, this.filled);
  }

  get isOpen(): boolean {
    return this.fd !== null;
  }

  /** Opens `path` to read from `offset` (on line `line`), skipping the first `skip` valid rows. */
  async open(
    path: string,
    { offset, line, skip }: { offset: number; line: number; skip: number },
    today: number,
  ): Promise<void> {
    this.close();
    this.fd = await new Promise<number>((resolve, reject) =>
      open(path, "r", (err, fd) => (err ? reject(err) : resolve(fd))),
    );
    this.base = offset;
    this.line = line;
    this.skip = skip;
    this.today = today;
    this.filled = this.pos = this.stop = 0;
    this.view = this.buf.subarray(0, 0);
    this.eof = false;
    this.batchStart = this.lastEnd = offset;
    this.batchStartLine = this.lastEndLine = line;
    this.builder.reset();
  }

  /** Closes the file (after the read in progress, if any). */
  close(): void {
    const fd = this.fd;
    this.fd = null;
    if (fd === null) return;
    if (this.reading) this.closeAfterRead = fd;
    else close(fd, () => undefined);
  }

  /** Reads the next bytes of the file after those not yet scanned (which move to the front). */
  async fill(): Promise<void> {
    if (this.fd === null) throw new Error("data file closed");
    if (this.pos > 0) {
      this.buf.copyWithin(0, this.pos, this.filled);
      this.base += this.pos;
      this.filled -= this.pos;
      this.pos = 0;
    }
    // one record longer than the read area (a huge quoted field): make room for it
    if (this.filled === this.buf.length) this.allocate(this.buf.length * 2);
    const keep = this.filled;
    this.reading = true;
    let n: number;
    try {
      n = await readAt(this.fd, this.buf, keep, this.buf.length - keep, this.base + keep);
    } finally {
      this.reading = false;
      if (this.closeAfterRead !== null) close(this.closeAfterRead, () => undefined);
      this.closeAfterRead = null;
    }
    if (n === 0) this.eof = true;
    this.filled = keep + n;
    this.view = this.buf.subarray(0, this.filled);
    // The fast path needs no bounds checks: every field stops at the LF that ends its region.
    const stop = this.view.lastIndexOf(LF) + 1;
    this.stop = stop > 0 && isUtf8(this.buf.subarray(0, stop)) ? stop : 0;
  }

  /** Goes on until a batch is ready, a row is invalid, more bytes are needed or the file ends. */
  step(): StepValue {
    for (;;) {
      if (this.skip === 0) {
        let r = PAUSED;
        while (r === PAUSED && this.pos < this.stop) r = this.fast();
        if (r === FULL) return Step.BATCH;
      }
      const s = this.slow();
      if (s !== MORE) return s;
    }
  }

  /** The builder's batch was sent (or dropped): the next one starts after its last row. */
  startBatch(): void {
    this.builder.reset();
    this.batchStart = this.lastEnd;
    this.batchStartLine = this.lastEndLine;
  }

  /**
   * The fast path: takes plain valid rows from buf[pos..stop) into the builder; stops at the
   * first row it does not take (left to the slow path), when the batch is full (FULL: send it
   * now) or after ROWS_PER_CALL rows (PAUSED).
   *
   * Hand-written on purpose (see the top of the file). It moves four bytes at a time: a word is
   * read from the file's bytes, stored as is at the end of the staged bytes, and tested with
   * bit tricks for a byte that ends the field — in a name or a date a byte below '-' (0x2d:
   * comma, quote, CR, LF, or a space that is simply kept), in the document and the number
   * anything but a digit. Bytes stored past the field are overwritten by the next one.
   * Measured (callgrind, 10 × agency-1, after warm-up): 1,070 instructions per row, against
   * 1,670-1,920 for a byte-at-a-time loop per field (TurboFan re-checks both arrays on every
   * byte); one TurboFan compile of 20-30M instructions, against about 50M for five loops.
   */
  private fast(): typeof STOPPED | typeof FULL | typeof PAUSED {
    const u8 = this.u8;
    const dv = this.dv;
    const bb = this.builder;
    const lens = bb.lengths;
    const stop = STAGE + this.stop;
    const max = this.maxAmount;
    const today = this.today;
    let n = bb.count;
    let kept = bb.dataLen; // staged bytes of the rows taken
    let p = STAGE + this.pos; // start of the row being scanned
    let rows = 0;
    let stopped: typeof STOPPED | typeof FULL | typeof PAUSED = STOPPED;
    let i = p;
    let o = kept;
    let f = 0; // field being scanned
    let fs = o; // where its bytes start in the staging area
    let k = n * FIELD_COUNT;
    let digits = false; // the field is the document or the number
    for (;;) {
      if (o > STAGE_LIMIT) break; // a runaway field
      const v = dv.getInt32(i, true);
      dv.setInt32(o, v, true);
      // high bit of each byte that ends the field: below '0' or above '9' / below '-'
      const m = digits
        ? ((v - 0x30303030) | (v + 0x46464646) | v) & 0x80808080
        : (v - 0x2d2d2d2d) & ~v & 0x80808080;
      if (m === 0) {
        i += 4;
        o += 4;
        continue;
      }
      // the first flagged byte (a borrow or carry can only flag bytes after it); shifted so that
      // negating cannot overflow
      const m1 = m >>> 1;
      const z = (30 - Math.clz32(m1 & -m1)) >> 3;
      i += z;
      o += z;
      const b = u8[i++]!;
      if (b === COMMA) {
        if (f === 4 || o - fs > MAX_FIELD_BYTES) break;
        lens[k + f] = o - fs;
        fs = o;
        f++;
        digits = f === 2 || f === 4;
        continue;
      }
      if (b === LF || b === CR) {
        if (f !== 4) break;
        if (b === CR && u8[i] === LF) i++;
        // the birthdate, YYYY-MM-DD, as three little-endian words of the staged bytes
        if (lens[k + 3] !== 10) break;
        const w0 = dv.getInt32(fs - 10, true);
        const w1 = dv.getInt32(fs - 6, true);
        const dd = dv.getUint16(fs - 2, true);
        const mm = (w1 >>> 8) & 0xffff;
        if ((w1 & 0xff) !== 0x2d || w1 >>> 24 !== 0x2d) break;
        if (
          ((w0 - 0x30303030) | (w0 + 0x46464646) | w0 | (mm - 0x3030) | (mm + 0x4646) | mm) &
            0x80808080 ||
          ((dd - 0x3030) | (dd + 0x4646) | dd) & 0x80808080
        ) {
          break;
        }
        const date = calendarKey(
          (w0 & 15) * 1000 + ((w0 >>> 8) & 15) * 100 + ((w0 >>> 16) & 15) * 10 + ((w0 >>> 24) & 15),
          (mm & 15) * 10 + ((mm >>> 8) & 15),
          (dd & 15) * 10 + ((dd >>> 8) & 15),
        );
        if (!acceptsBet(lens[k]!, lens[k + 1]!, lens[k + 2]!, date, o - fs, today)) break;
        if (HEADER_SIZE + BATCH_PREFIX + (n + 1) * FIELD_COUNT + o > MAX_FRAME) {
          stopped = FULL; // sent without this row, which is scanned again for the next batch
          break;
        }
        lens[k + 4] = o - fs;
        kept = o;
        n++;
        rows++;
        p = i;
        if (n >= max) {
          stopped = FULL;
          break;
        }
        if (i >= stop) break;
        if (rows === ROWS_PER_CALL) {
          stopped = PAUSED;
          break;
        }
        k += FIELD_COUNT;
        f = 0;
        fs = o;
        digits = false;
        continue;
      }
      if (b === QUOTE || f > 1) break;
      o++; // a space or another low byte inside a name: the word store copied it
    }
    bb.count = n;
    bb.dataLen = kept;
    if (rows > 0) {
      this.pos = p - STAGE;
      this.line += rows;
      this.lastEnd = this.base + this.pos;
      this.lastEndLine = this.line;
    }
    return stopped;
  }

  /** The slow path: one record through the CSV reader and validateBetFields, as before. */
  private slow(): StepValue | typeof MORE {
    if (this.pos >= this.filled) return this.eof ? Step.END : Step.NEED_DATA;
    const reader = this.reader;
    reader.resetAt(this.view, this.pos, this.base, this.line);
    const r = this.eof ? reader.end() : reader.next();
    if (r === null) {
      // blank lines were consumed; the rest is an incomplete record (or nothing)
      this.pos = reader.offset - this.base;
      this.line = reader.lineNumber;
      return this.eof ? Step.END : Step.NEED_DATA;
    }
    const bb = this.builder;
    if (r.fieldCount === FIELD_COUNT && bb.count > 0) {
      let bytes = 0;
      for (let f = 0; f < FIELD_COUNT; f++) bytes += r.ends[f]! - r.starts[f]!;
      if (bb.sizeWith(bytes) > MAX_FRAME) {
        // the row closes the batch: read it again once the batch is sent
        this.pos = r.startOffset - this.base;
        this.line = r.line;
        return Step.BATCH;
      }
    }
    this.pos = reader.offset - this.base;
    this.line = reader.lineNumber;
    const bad = this.check(r);
    if (bad === "blank") return MORE;
    if (bad !== null) {
      this.invalid = bad;
      this.invalidLine = r.line;
      this.invalidStart = r.startOffset;
      this.invalidEnd = r.endOffset;
      return Step.INVALID;
    }
    if (this.skip > 0) {
      // already committed by the server (resume in the middle of a batch)
      bb.undo();
      this.skip--;
      this.batchStart = this.lastEnd = r.endOffset;
      this.batchStartLine = this.lastEndLine = this.line;
      return MORE;
    }
    this.lastEnd = r.endOffset;
    this.lastEndLine = this.line;
    return bb.count >= this.maxAmount ? Step.BATCH : MORE;
  }

  /** Adds the record to the builder if it is a valid bet; otherwise why not (or a blank row). */
  private check(r: CsvRecord): Fault | null | "blank" {
    if (r.fieldCount !== FIELD_COUNT) {
      if (r.fieldCount === 1 && r.ends[0]! === r.starts[0]!) return "blank";
      return fault(ErrorCode.MALFORMED, `expected ${FIELD_COUNT} fields, found ${r.fieldCount}`);
    }
    for (let f = 0; f < FIELD_COUNT; f++) {
      if (r.ends[f]! - r.starts[f]! > MAX_FIELD_BYTES) {
        return fault(ErrorCode.INVALID_NAME, `field ${f + 1} longer than ${MAX_FIELD_BYTES} bytes`);
      }
    }
    const bb = this.builder;
    bb.add(r.bufs, r.starts, r.ends);
    const v = validateBetFields(bb.data, bb.lastStarts, bb.lastEnds, 0, this.today);
    if (typeof v !== "number") {
      bb.undo();
      return v;
    }
    for (let f = 0; f < 2; f++) {
      if (!isUtf8(bb.data.subarray(bb.lastStarts[f]!, bb.lastEnds[f]!))) {
        bb.undo();
        return fault(ErrorCode.INVALID_NAME, "name is not valid UTF-8");
      }
    }
    return null;
  }
}
