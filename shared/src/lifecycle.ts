// The one place that owns signals and process exit. Programs register an async `close` that
// releases their resources (each logging what it closed); a signal runs it once, with a deadline
// so the process always exits within Docker's stop grace period.

import type { Logger } from "./log.js";

export interface LifecycleOptions {
  /** Upper bound for the whole close sequence; after it the process exits anyway. */
  deadlineMs: number;
}

export class Lifecycle {
  private closing: Promise<void> | null = null;
  private closer: ((reason: string) => Promise<void>) | null = null;
  private readonly handlers = new Map<NodeJS.Signals, () => void>();

  constructor(
    private readonly log: Logger,
    private readonly opts: LifecycleOptions,
  ) {}

  /** Sets what a shutdown does; call before `install`. */
  onClose(fn: (reason: string) => Promise<void>): void {
    this.closer = fn;
  }

  install(signals: NodeJS.Signals[] = ["SIGTERM", "SIGINT"]): void {
    for (const sig of signals) {
      const h = () => {
        this.log.info("signal_received", "success", { signal: sig });
        void this.shutdown(sig, 0);
      };
      this.handlers.set(sig, h);
      process.on(sig, h);
    }
  }

  get isClosing(): boolean {
    return this.closing !== null;
  }

  /** Runs the close sequence once, then exits with `code`. Later calls wait for the first. */
  shutdown(reason: string, code: number): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      this.log.info("shutdown", "in_progress", { reason });
      const timer = setTimeout(() => {
        this.log.warn("shutdown", "in_progress", {
          reason: `deadline of ${this.opts.deadlineMs}ms reached, exiting`,
        });
        this.exit(code);
      }, this.opts.deadlineMs);
      try {
        if (this.closer) await this.closer(reason);
        this.log.info("shutdown", "success", { reason });
      } catch (err) {
        this.log.error("shutdown", "fail", { reason, error: String(err) });
        code = code === 0 ? 1 : code;
      }
      clearTimeout(timer);
      this.exit(code);
    })();
    return this.closing;
  }

  exit(code: number): never {
    for (const [sig, h] of this.handlers) process.off(sig, h);
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
