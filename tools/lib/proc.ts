// Child processes for the local tools (run-local, bench): spawned with an explicit environment
// and working directory, their output split into lines as it arrives (and optionally copied to a
// log file), their memory and CPU sampled from /proc while they live.
//
// Only processes started here are ever signalled, by their own pid, and never after they were
// seen to exit (a pid can be reused once its process is reaped).

import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, readdirSync, readFileSync, type WriteStream } from "node:fs";
import { performance } from "node:perf_hooks";

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
  /** A short name used in messages ("server", "agency 3"). */
  name: string;
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
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ): 100 on every Linux we care about. */
const CLK_TCK = 100;

/** Reads VmHWM / VmRSS (kB) and CPU time (ms) of a live process; null when it is gone. */
export function readProcStats(
  pid: number,
): { hwmKb: number; rssKb: number; cpuMs: number; sysMs: number } | null {
  let status: string;
  let stat: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "latin1");
    stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return null;
  }
  const kb = (key: string): number => {
    const i = status.indexOf(`${key}:`);
    if (i < 0) return 0;
    return Number.parseInt(status.slice(i + key.length + 1).trimStart(), 10) || 0;
  };
  // Fields after "(comm)": state is field 3, utime field 14, stime field 15.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const user = Number(rest[11]) || 0;
  const sys = Number(rest[12]) || 0;
  return {
    hwmKb: kb("VmHWM"),
    rssKb: kb("VmRSS"),
    cpuMs: ((user + sys) * 1000) / CLK_TCK,
    sysMs: (sys * 1000) / CLK_TCK,
  };
}

export class ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly startedAt: number;
  /** Resolves once the process exited and its output was read to the end. */
  readonly exited: Promise<ExitInfo>;
  exit: ExitInfo | null = null;
  readonly stats: ProcStats = { peakRssKb: 0, rssKb: 0, cpuMs: 0, sysMs: 0, samples: 0 };
  private readonly tail: string[] = [];
  private readonly tailLines: number;
  private readonly log: WriteStream | null;

  constructor(private readonly opts: SpawnOptions) {
    this.name = opts.name;
    this.tailLines = opts.tailLines ?? 20;
    this.startedAt = performance.now();
    this.log = opts.logPath ? createWriteStream(opts.logPath) : null;
    this.log?.on("error", () => undefined);
    this.child = spawn(opts.command, [...opts.args], {
      cwd: opts.cwd,
      env: { ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
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

  /** SIGTERM, then SIGKILL after `graceMs` if it is still running; resolves on exit. */
  async stop(graceMs: number): Promise<ExitInfo> {
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
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
    const emit = (line: string, at: number) => {
      this.pushTail(line);
      this.opts.onLine?.(line, stream, at);
    };
    src.on("data", (text: string) => {
      this.log?.write(text);
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

/** Samples a set of processes every `intervalMs` until stopped. */
export class Sampler {
  private readonly procs: ManagedProcess[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly intervalMs: number) {}

  add(p: ManagedProcess): void {
    this.procs.push(p);
    p.sample();
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.sampleAll(), this.intervalMs);
  }

  sampleAll(): void {
    for (const p of this.procs) p.sample();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/**
 * CPU time (ms) used so far by a process and all its descendants: its own user + system time,
 * that of its children it has reaped (cutime + cstime) and that of its live descendants. The
 * difference between two readings is what the whole tree used meanwhile, even when workers come
 * and go (a PostgreSQL postmaster and its backends). null when the process is gone.
 */
export function treeCpuMs(pid: number): number | null {
  const parse = (text: string) => {
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
    const t = (i: number) => Number(rest[i]) || 0;
    return { ppid: t(1), own: t(11) + t(12), reaped: t(13) + t(14) };
  };
  let root: ReturnType<typeof parse>;
  try {
    root = parse(readFileSync(`/proc/${pid}/stat`, "latin1"));
  } catch {
    return null;
  }
  const children = new Map<number, { own: number; reaped: number; kids: number[] }>();
  const byParent = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let st: ReturnType<typeof parse>;
    try {
      st = parse(readFileSync(`/proc/${name}/stat`, "latin1"));
    } catch {
      continue; // gone meanwhile
    }
    const p = Number(name);
    children.set(p, { own: st.own, reaped: st.reaped, kids: [] });
    const list = byParent.get(st.ppid);
    if (list) list.push(p);
    else byParent.set(st.ppid, [p]);
  }
  let ticks = root.own + root.reaped;
  const stack = [...(byParent.get(pid) ?? [])];
  while (stack.length > 0) {
    const p = stack.pop()!;
    const c = children.get(p);
    if (!c) continue;
    ticks += c.own + c.reaped;
    stack.push(...(byParent.get(p) ?? []));
  }
  return (ticks * 1000) / CLK_TCK;
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
