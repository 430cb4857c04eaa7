// Course log format: `YYYY-MM-DD HH:MM:SS LEVEL    action: x | result: y | key: value`.
// The course's parser splits on `|` and takes each value after the last `:`, so values are
// sanitised (no `|`, no line breaks) before they are printed.

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

/** Makes a value safe for the course's log parser: no `|`, no line breaks. */
export function sanitize(value: string): string {
  return value.replace(/[|\r\n]/g, (c) => (c === "|" ? "/" : " "));
}

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
  flush(): void;
}

/**
 * Buffers lines and writes them once per event-loop turn: a hot server logs a line per batch,
 * and one write per line would cost a syscall each. `flush()` writes synchronously (exit path).
 */
export class BufferedSink implements Sink {
  private pending = "";
  private scheduled = false;

  constructor(private readonly fd: number = 1) {}

  write(text: string): void {
    this.pending += text;
    if (this.pending.length > 64 * 1024) {
      this.flush();
      return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const text = this.pending;
    this.pending = "";
    writeAllSync(this.fd, Buffer.from(text, "utf8"));
  }
}

import { writeSync } from "node:fs";

function writeAllSync(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off, buf.length - off);
    } catch (err) {
      // stdout is a non-blocking pipe whose reader is slow: retry; a closed pipe: drop the logs.
      if ((err as NodeJS.ErrnoException).code === "EAGAIN") continue;
      return;
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
}
