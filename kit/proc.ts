// Child processes of the tools (run-local, bench) and the integration tests: spawned with an
// explicit environment and working directory, their output split into lines as it arrives
// (optionally kept for the tests to read, or copied to a log file), their memory and CPU sampled
// from /proc while they live (stats.ts).
//
// Only processes started here are ever signalled, by their own pid, and never after they were
// seen to exit (a pid can be reused once its process is reaped).

import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { basename } from "node:path";
import { performance } from "node:perf_hooks";
import { readProcStats } from "./stats.js";

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** performance.now() when the exit was seen. */
  at: number;
}

export interface ProcStats {
  /** Peak resident set size (VmHWM), kB; 0 when never sampled. */
  peakRssKb: number;
  /** Resident set size at the last sample, kB. */
  rssKb: number;
  /** User + system CPU time at the last sample, ms. */
  cpuMs: number;
  /** The system (kernel) part of cpuMs. */
  sysMs: number;
  samples: number;
}

export type Stream = "stdout" | "stderr";

export interface SpawnOptions {
  /** A short name used in messages ("server", "agency 3"); the command's name by default. */
  name?: string;
  command: string;
  args: readonly string[];
  cwd: string;
  env: Readonly<Record<string, string>>;
  /** Called for every complete output line (without its line break). */
  onLine?: (line: string, stream: Stream, at: number) => void;
  /** Where to copy the raw output (stdout and stderr interleaved), if anywhere. */
  logPath?: string;
  /** Lines kept for error reports (default 20). */
  tailLines?: number;
  /** Keep every stdout line in `lines` and all of stderr in `stderr` (tests read them all). */
  keepOutput?: boolean;
  /** Descriptors of this process the child inherits as its fds 3, 4, … */
  passFds?: readonly number[];
}

export class ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly startedAt: number;
  /** Resolves once the process exited and its output was read to the end. */
  readonly exited: Promise<ExitInfo>;
  exit: ExitInfo | null = null;
  /** Exit status; null when a signal ended it or it did not start. */
  readonly code: Promise<number | null>;
  /** With `keepOutput`: every stdout line so far, and stderr. */
  readonly lines: string[] = [];
  stderr = "";
  readonly stats: ProcStats = { peakRssKb: 0, rssKb: 0, cpuMs: 0, sysMs: 0, samples: 0 };
  private readonly tail: string[] = [];
  private readonly tailLines: number;
  private readonly log: WriteStream | null;
  private readonly watchers = new Set<(line: string) => void>();

  constructor(private readonly opts: SpawnOptions) {
    this.name = opts.name ?? basename(opts.command);
    this.tailLines = opts.tailLines ?? 20;
    this.startedAt = performance.now();
    this.log = opts.logPath ? createWriteStream(opts.logPath) : null;
    this.log?.on("error", () => undefined);
    this.child = spawn(opts.command, [...opts.args], {
      cwd: opts.cwd,
      env: { ...opts.env },
      stdio: ["ignore", "pipe", "pipe", ...(opts.passFds ?? [])],
    });
    this.pid = this.child.pid ?? -1;
    const outDone = this.readLines("stdout");
    const errDone = this.readLines("stderr");
    const closed = new Promise<ExitInfo>((resolve) => {
      // 'error' (spawn failure) is followed by 'close' on modern Node, but be safe.
      this.child.once("error", (err) => {
        this.pushTail(`spawn error: ${err.message}`);
        resolve({ code: null, signal: null, at: performance.now() });
      });
      this.child.once("exit", (code, signal) => {
        this.exit = { code, signal, at: performance.now() };
        resolve(this.exit);
      });
    });
    this.exited = Promise.all([closed, outDone, errDone]).then(([info]) => {
      this.exit ??= info;
      this.log?.end();
      return this.exit;
    });
    this.code = this.exited.then((e) => e.code);
  }

  get alive(): boolean {
    return this.exit === null && this.pid > 0;
  }

  /** Samples /proc once (no-op once the process has exited). */
  sample(): void {
    if (!this.alive) return;
    const s = readProcStats(this.pid);
    if (s === null) return;
    this.stats.samples++;
    this.stats.rssKb = s.rssKb;
    this.stats.peakRssKb = Math.max(this.stats.peakRssKb, s.hwmKb, s.rssKb);
    this.stats.cpuMs = Math.max(this.stats.cpuMs, s.cpuMs);
    this.stats.sysMs = Math.max(this.stats.sysMs, s.sysMs);
  }

  /** Sends a signal to this process if it is still running; true when sent. */
  signal(sig: NodeJS.Signals): boolean {
    if (!this.alive) return false;
    try {
      return this.child.kill(sig);
    } catch {
      return false;
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs` (if given) if it is still running; resolves on exit. */
  async stop(graceMs?: number): Promise<ExitInfo> {
    this.signal("SIGTERM");
    const timer =
      graceMs === undefined ? undefined : setTimeout(() => this.signal("SIGKILL"), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Calls `fn` with every later stdout line; returns the call that stops it. */
  onStdoutLine(fn: (line: string) => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  /** Resolves with the first stdout line matching `re` (already seen or future; `keepOutput`). */
  waitFor(re: RegExp, timeoutMs = 20_000): Promise<string> {
    const seen = this.lines.find((l) => re.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const off = this.onStdoutLine((l) => {
        if (!re.test(l)) return;
        clearTimeout(t);
        off();
        resolve(l);
      });
      const t = setTimeout(() => {
        off();
        reject(
          new Error(`timeout waiting for ${re}; got:\n${this.lines.join("\n")}\n${this.stderr}`),
        );
      }, timeoutMs);
    });
  }

  /** The last lines of output (for error reports). */
  lastLines(): string[] {
    return [...this.tail];
  }

  private pushTail(line: string): void {
    this.tail.push(line);
    if (this.tail.length > this.tailLines) this.tail.shift();
  }

  private readLines(stream: Stream): Promise<void> {
    const src = this.child[stream];
    if (!src) return Promise.resolve();
    src.setEncoding("utf8");
    let rest = "";
    const keep = this.opts.keepOutput === true;
    const emit = (line: string, at: number) => {
      this.pushTail(line);
      if (stream === "stdout") {
        if (keep) this.lines.push(line);
        for (const w of this.watchers) w(line);
      }
      this.opts.onLine?.(line, stream, at);
    };
    src.on("data", (text: string) => {
      this.log?.write(text);
      if (keep && stream === "stderr") this.stderr += text;
      const at = performance.now();
      let start = 0;
      for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", start)) {
        const piece = text.slice(start, nl);
        emit(rest === "" ? piece : rest + piece, at);
        rest = "";
        start = nl + 1;
      }
      rest += text.slice(start);
    });
    return new Promise((resolve) => {
      const done = () => {
        if (rest !== "") emit(rest, performance.now());
        rest = "";
        resolve();
      };
      src.once("end", done);
      src.once("error", done);
    });
  }
}

/** A minimal environment for the child programs: nothing of the caller's configuration leaks in. */
export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"]) {
    const v = process.env[key];
    if (v !== undefined) env[key] = v;
  }
  return env;
}

/** "exit 0", "exit 3", "SIGTERM", "not started". */
export function describeExit(e: ExitInfo | null): string {
  if (e === null) return "running";
  if (e.signal) return e.signal;
  return e.code === null ? "failed to start" : `exit ${e.code}`;
}

/** kill -9 (by the child's PID) if it still runs, and wait for it to be gone. */
export async function killHard(p: ManagedProcess): Promise<void> {
  p.signal("SIGKILL");
  await p.exited;
}

/** Kills (SIGKILL) every process of the list that is still running; for `finally` blocks. */
export async function reap(procs: readonly ManagedProcess[]): Promise<void> {
  await Promise.all(procs.map((p) => killHard(p)));
}

/** SIGTERM (if it still runs) and its exit status. */
export async function stop(p: ManagedProcess): Promise<number | null> {
  return (await p.stop()).code;
}
