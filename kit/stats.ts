// Memory and CPU of live processes, read from /proc: the tools' per-process figures (peak RSS,
// CPU time, a whole process tree's CPU) and the tests' RSS bounds come from the same reader.

import { readdirSync, readFileSync } from "node:fs";
import type { ManagedProcess } from "./proc.js";

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
  const children = new Map<number, { own: number; reaped: number }>();
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
    children.set(p, { own: st.own, reaped: st.reaped });
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

export interface RssReport {
  /** Largest VmRSS seen while sampling, and the kernel's VmHWM at the last sample (kB). */
  peakRssKb: number;
  hwmKb: number;
  samples: number;
}

/** Samples the RSS of `pid` every `everyMs` until `stop()` (which returns the figures). */
export function sampleRss(pid: number, everyMs = 100): { peek(): RssReport; stop(): RssReport } {
  const report: RssReport = { peakRssKb: 0, hwmKb: 0, samples: 0 };
  const take = () => {
    const s = readProcStats(pid);
    if (s !== null && s.rssKb > 0) {
      report.samples++;
      report.peakRssKb = Math.max(report.peakRssKb, s.rssKb);
      report.hwmKb = Math.max(report.hwmKb, s.hwmKb);
    }
  };
  take();
  const t = setInterval(take, everyMs);
  return {
    peek() {
      take();
      return { ...report };
    },
    stop() {
      take();
      clearInterval(t);
      return report;
    },
  };
}

/** Where the threads of a live process wait in the kernel (tells a stuck fsync from a bug). */
export function threadStates(pid: number | undefined): string {
  if (pid === undefined) return "";
  try {
    const waits = new Map<string, number>();
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8");
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      let wchan = "";
      try {
        wchan = readFileSync(`/proc/${pid}/task/${t}/wchan`, "utf8");
      } catch {
        wchan = "?";
      }
      const k = `${state}:${wchan || "-"}`;
      waits.set(k, (waits.get(k) ?? 0) + 1);
    }
    return `[pid ${pid} threads: ${[...waits].map(([k, n]) => `${n}x ${k}`).join(", ")}]`;
  } catch {
    return "";
  }
}
