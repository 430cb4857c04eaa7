// Course log format: `YYYY-MM-DD HH:MM:SS LEVEL    action: x | result: y | key: value`.
// The course's parser splits on `|` and takes each value after the last `:`, so values are
// sanitised (no `|`, no line breaks) before they are printed.

import { writeSync } from "node:fs";
import sonicBoom from "sonic-boom";
import { Action } from "./actions.js";

const { SonicBoom } = sonicBoom;

export type Level = "DEBUG" | "INFO" | "WARNING" | "ERROR" | "CRITICAL";
export type Result = "success" | "fail" | "in_progress";
export type Fields = Record<string, string | number | bigint | boolean>;

const RANK: Record<Level, number> = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50 };
const ALIASES: Record<string, Level> = { WARN: "WARNING", FATAL: "CRITICAL" };

export function parseLevel(raw: string): Level | null {
  const up = raw.trim().toUpperCase();
  if (up in RANK) return up as Level;
  return ALIASES[up] ?? null;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

export function timestamp(d: Date): string {
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/**
 * Makes a value safe for the course's log parser: no `|`, no line breaks — neither \r and \n
 * nor the others Python's str.splitlines() and JavaScript's regular expressions split on
 * (\v, \f, \x1c–\x1e, \x85, U+2028, U+2029).
 */
export function sanitize(value: string): string {
  return value.replace(LOG_UNSAFE, (c) => (c === "|" ? "/" : " "));
}
// biome-ignore lint/suspicious/noControlCharactersInRegex: these control characters are line breaks to remove
const LOG_UNSAFE = /[|\n\v\f\r\x1c-\x1e\x85\u2028\u2029]/g;

export function formatMessage(action: string, result: Result, fields?: Fields): string {
  let line = `action: ${action} | result: ${result}`;
  if (fields) {
    for (const key in fields) line += ` | ${key}: ${sanitize(String(fields[key]))}`;
  }
  return line;
}

export function formatLine(level: Level, message: string, now: Date = new Date()): string {
  return `${timestamp(now)} ${level.padEnd(8)} ${message}\n`;
}

export interface Sink {
  write(text: string): void;
  /** Writes what is queued, synchronously: only for exits that cannot wait (`fatal`). */
  flush(): void;
  /** Resolves once every line written so far is out (sinks that write asynchronously). */
  drain?(): Promise<void>;
}

/** Log bytes held while stdout's reader is slow; past it lines are dropped, memory stays bounded. */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
/** Lines gathered before they are handed to the writer (or at the end of the event-loop turn). */
const BATCH_CHARS = 256 * 1024;
/** Largest single write: one write per turn's output keeps up with a fast producer (16 KB did not). */
const MAX_WRITE_BYTES = 1024 * 1024;

/** sonic-boom in "buffer" mode: `write` takes Buffers (its type declarations only name strings). */
interface BufferWriter {
  write(buf: Buffer): boolean;
  flushSync(): void;
  end(): void;
  on(event: "write", fn: (bytes: number) => void): void;
  on(event: "error", fn: (err: Error) => void): void;
  once(event: "close", fn: () => void): void;
}

/**
 * Lines are gathered per event-loop turn (a hot server logs a line per batch; handing sonic-boom
 * a string per line costs 3x the CPU) and go out through sonic-boom, pino's writer: asynchronous
 * writes, one in flight, what arrives meanwhile coalesced into the next one, so the event loop
 * never waits for stdout's reader. A full non-blocking pipe (EAGAIN) is retried from a timer,
 * never in a loop; a reader that went away (EPIPE) makes the sink drop what follows.
 */
export class BufferedSink implements Sink {
  private readonly out: BufferWriter;
  private pending = "";
  private scheduled = false;
  /** Bytes handed to sonic-boom and not yet written. */
  private queued = 0;
  /** Lines dropped because the reader fell MAX_QUEUED_BYTES behind; said once, at the end. */
  private dropped = 0;
  private broken = false;
  private flushingSync = false;
  private syncRetries = 0;
  private ended: Promise<void> | null = null;
  private onBroken: (() => void) | null = null;
  private readonly handOffNow = () => this.handOff();

  constructor(private readonly fd = 1) {
    this.out = new SonicBoom({
      fd,
      sync: false,
      contentMode: "buffer",
      maxWrite: MAX_WRITE_BYTES,
      // Asynchronous writes wait for a slow reader as long as it takes (from a timer); the
      // synchronous exit flush gives up after 10 waits of 100 ms.
      retryEAGAIN: () => !this.flushingSync || ++this.syncRetries <= 10,
    }) as unknown as BufferWriter;
    this.out.on("write", (bytes) => {
      this.queued -= bytes;
    });
    this.out.on("error", () => {
      this.broken = true;
      this.onBroken?.();
    });
  }

  write(text: string): void {
    if (this.broken || this.ended !== null) return;
    this.pending += text;
    if (this.pending.length >= BATCH_CHARS) {
      this.handOff();
    } else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.handOffNow);
    }
  }

  private handOff(): void {
    this.scheduled = false;
    if (this.pending.length === 0 || this.broken) return;
    const buf = Buffer.from(this.pending, "utf8");
    if (this.queued + buf.length > MAX_QUEUED_BYTES) {
      for (let i = this.pending.indexOf("\n"); i >= 0; i = this.pending.indexOf("\n", i + 1)) {
        this.dropped++;
      }
    } else {
      this.queued += buf.length;
      this.out.write(buf);
    }
    this.pending = "";
  }

  /**
   * Writes everything synchronously (exits that cannot wait). With sonic-boom idle the lines are
   * written here, directly; if it still holds earlier lines, its flushSync writes them first
   * (EAGAIN retried for at most 1 s), but a write already in flight on the thread pool cannot be
   * waited for (pino's exit has the same limit), so orderly exits use `drain()`.
   */
  flush(): void {
    if (this.ended !== null || this.broken) return;
    if (this.queued > 0) {
      this.handOff();
      this.syncRetries = 0;
      this.flushingSync = true;
      try {
        this.out.flushSync();
      } catch {
        this.broken = true; // reader gone or stuck: nothing more can be said
      } finally {
        this.flushingSync = false;
      }
      return;
    }
    this.scheduled = false;
    const text = this.pending;
    this.pending = "";
    if (text.length > 0) writeAllSync(this.fd, Buffer.from(text, "utf8"));
  }

  /** Ends the stream once every line is written; later lines are dropped (we are exiting). */
  drain(): Promise<void> {
    if (this.ended) return this.ended;
    if (this.dropped > 0) {
      this.write(
        formatLine("WARNING", formatMessage(Action.LOG, "fail", { dropped_lines: this.dropped })),
      );
    }
    this.handOff();
    this.ended = new Promise<void>((resolve) => {
      if (this.broken) return resolve();
      this.onBroken = resolve;
      // sonic-boom does not close fd 1 or 2: 'close' says the last write completed.
      this.out.once("close", () => resolve());
      this.out.end();
    });
    return this.ended;
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/** A synchronous write for the exit path: EAGAIN waits (sleeping, up to 1 s), never spins. */
function writeAllSync(fd: number, buf: Buffer): void {
  let off = 0;
  for (let waits = 0; off < buf.length; ) {
    try {
      off += writeSync(fd, buf, off, buf.length - off);
    } catch (err) {
      // a closed pipe, or a reader stuck for a second: the lines are dropped
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN" || ++waits > 20) return;
      Atomics.wait(pause, 0, 0, 50);
    }
  }
}

export class Logger {
  private threshold: number;

  constructor(
    public level: Level = "INFO",
    private readonly sink: Sink = new BufferedSink(1),
  ) {
    this.threshold = RANK[level];
  }

  setLevel(level: Level): void {
    this.level = level;
    this.threshold = RANK[level];
  }

  enabled(level: Level): boolean {
    return RANK[level] >= this.threshold;
  }

  log(level: Level, action: string, result: Result, fields?: Fields): void {
    if (RANK[level] < this.threshold) return;
    this.sink.write(formatLine(level, formatMessage(action, result, fields)));
  }

  debug(action: string, result: Result, fields?: Fields): void {
    this.log("DEBUG", action, result, fields);
  }
  info(action: string, result: Result, fields?: Fields): void {
    this.log("INFO", action, result, fields);
  }
  warn(action: string, result: Result, fields?: Fields): void {
    this.log("WARNING", action, result, fields);
  }
  error(action: string, result: Result, fields?: Fields): void {
    this.log("ERROR", action, result, fields);
  }

  flush(): void {
    this.sink.flush();
  }

  /** Resolves once every line logged so far is out (see `Sink.drain`). */
  drain(): Promise<void> {
    return this.sink.drain?.() ?? Promise.resolve();
  }
}
