// The one place that owns signals and process exit (in the manner of fastify's close-with-grace).
// Programs register an async `close` that releases their resources (each logging what it closed):
// - a signal runs it once, and the process exits 0;
// - an uncaught exception or unhandled rejection is logged once, runs it, and the exit is 1;
// - a second signal exits at once (128 + signal number, as a shell reports it);
// - a close still running at the deadline exits 1 and names what was still open, so the process
//   always ends within Docker's stop grace period.
// Every exit but the immediate ones waits for the log to be written (the logger is asynchronous).

import { constants } from "node:os";
import { Action } from "./actions.js";
import { parseDuration } from "./duration.js";
import { QuinielaError } from "./errors.js";
import type { Logger } from "./log.js";

export interface LifecycleOptions {
  /** Upper bound for the whole close sequence; past it the process exits 1. */
  deadlineMs: number;
}

/** The close deadline: `text` (a duration such as `8s`, e.g. from the environment) or `fallbackMs`. */
export function closeDeadline(name: string, text: string | undefined, fallbackMs: number): number {
  if (text === undefined || text.trim() === "") return fallbackMs;
  const ms = parseDuration(text.trim());
  if (ms === null || ms <= 0) {
    throw new QuinielaError("BAD_CONFIG", `${name} must be a positive duration, got "${text}"`);
  }
  return ms;
}

/** How long an exit waits for the log to reach a slow reader before giving up on it. */
const LOG_DRAIN_MS = 1000;

export class Lifecycle {
  private closing: Promise<void> | null = null;
  private closer: ((reason: string) => Promise<void>) | null = null;
  private readonly handlers = new Map<string, (arg: unknown) => void>();
  /** Parts of the close still running, by name (what the deadline report lists). */
  private readonly open = new Set<string | (() => string)>();
  private signals = 0;
  private code = 0;
  private exiting = false;

  constructor(
    private readonly log: Logger,
    private readonly opts: LifecycleOptions,
  ) {}

  /** Sets what a shutdown does; call before `install`. */
  onClose(fn: (reason: string) => Promise<void>): void {
    this.closer = fn;
  }

  install(signals: NodeJS.Signals[] = ["SIGTERM", "SIGINT"]): void {
    for (const sig of signals) this.listen(sig, () => this.onSignal(sig));
    this.listen("uncaughtException", (err: unknown) => this.onCrash("uncaughtException", err));
    this.listen("unhandledRejection", (err: unknown) => this.onCrash("unhandledRejection", err));
  }

  private listen(event: string, h: (arg: unknown) => void): void {
    this.handlers.set(event, h);
    process.on(event, h);
  }

  private onSignal(sig: NodeJS.Signals): void {
    this.log.info(Action.SIGNAL_RECEIVED, "success", { signal: sig });
    if (this.signals++ > 0) {
      // The operator insists: whatever is still closing is abandoned.
      this.log.warn(Action.SHUTDOWN, "fail", { reason: `second signal ${sig}, exiting at once` });
      this.exitNow(128 + (constants.signals[sig] ?? 0));
    }
    if (!this.exiting) void this.shutdown(sig, 0);
  }

  private onCrash(origin: string, err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.log.error(Action.SHUTDOWN, "fail", { reason: origin, error: e.message });
    process.stderr.write(`${origin}: ${e.stack ?? e.message}\n`);
    void this.shutdown(origin, 1);
  }

  get isClosing(): boolean {
    return this.closing !== null || this.exiting;
  }

  /**
   * Runs one named part of the close; while it runs, a deadline report names it. `name` may be
   * a function, read when the report is written (e.g. how many connections are left).
   */
  async step<T>(name: string | (() => string), fn: () => T | Promise<T>): Promise<T> {
    this.open.add(name);
    try {
      return await fn();
    } finally {
      this.open.delete(name);
    }
  }

  /**
   * Runs the close sequence once, then exits with `code` (the highest asked for: a crash during
   * a signal's close still exits 1). Later calls wait for the first.
   */
  shutdown(reason: string, code: number): Promise<void> {
    this.code = Math.max(this.code, code);
    if (this.closing) return this.closing;
    this.closing = (async () => {
      this.log.info(Action.SHUTDOWN, "in_progress", { reason });
      const timer = setTimeout(() => {
        const open = [...this.open].map((n) => (typeof n === "string" ? n : n()));
        this.log.error(Action.SHUTDOWN, "fail", {
          reason: `close did not finish within ${this.opts.deadlineMs}ms`,
          open: open.length > 0 ? open.join(", ") : "close sequence",
        });
        this.exitNow(1);
      }, this.opts.deadlineMs);
      try {
        if (this.closer) await this.closer(reason);
        this.log.info(Action.SHUTDOWN, "success", { reason });
      } catch (err) {
        this.log.error(Action.SHUTDOWN, "fail", { reason, error: String(err) });
        this.code = Math.max(this.code, 1);
      }
      clearTimeout(timer);
      this.exit(this.code);
    })();
    return this.closing;
  }

  /** Exits with `code` once the log is written (bounded: a stuck reader cannot hold the exit). */
  exit(code: number): void {
    if (this.exiting) return;
    this.exiting = true;
    process.exitCode = code;
    setTimeout(() => this.exitNow(code), LOG_DRAIN_MS).unref();
    void this.log.drain().then(() => this.exitNow(code));
  }

  /** Exits now: what the log has queued is written synchronously, nothing else is waited for. */
  private exitNow(code: number): never {
    for (const [event, h] of this.handlers) process.off(event, h);
    this.log.flush();
    process.exit(code);
  }
}

/** Prints a one-line fatal reason (not in the course log format: it is for humans) and exits. */
export function fatal(log: Logger | null, message: string, code = 1): never {
  log?.flush();
  process.stderr.write(`fatal: ${message}\n`);
  process.exit(code);
}
