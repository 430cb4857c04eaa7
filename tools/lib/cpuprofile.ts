#!/usr/bin/env node
// Summarises a V8 .cpuprofile (written by `node --cpu-prof`): self and total time per function,
// and self time per source file, so the benchmark can say where the time goes.
//
//   node dist/tools/lib/cpuprofile.js FILE.cpuprofile [--top N]
//
// Self time of a sample is the time until the next sample (timeDeltas[i + 1]); total time of a
// function counts each sample once even when the function is on the stack several times.

import { readFileSync, realpathSync } from "node:fs";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { markdownTable } from "./format.js";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface FunctionCost {
  name: string;
  /** file:line (1-based), or a V8 pseudo-frame such as (garbage collector). */
  where: string;
  selfMs: number;
  totalMs: number;
}

export interface ProfileSummary {
  wallMs: number;
  /** Time in (idle): the event loop waiting (I/O, timers, the thread pool). */
  idleMs: number;
  gcMs: number;
  /** Everything but idle. */
  busyMs: number;
  functions: FunctionCost[];
  /** Self time per source file (node:internal/... grouped by module). */
  files: Array<{ file: string; selfMs: number }>;
}

function shortUrl(url: string): string {
  if (url === "") return "";
  if (url.startsWith("node:")) return url;
  const i = url.indexOf("/dist/");
  if (i >= 0) return url.slice(i + 6);
  return basename(url);
}

function keyOf(cf: CallFrame): { name: string; where: string } {
  const name = cf.functionName === "" ? "(anonymous)" : cf.functionName;
  if (cf.url === "") return { name, where: name.startsWith("(") ? "" : "(native)" };
  return { name, where: `${shortUrl(cf.url)}:${cf.lineNumber + 1}` };
}

export function summarizeProfile(p: CpuProfile): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const dt = i + 1 < deltas.length ? deltas[i + 1]! : 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, dt));
  }
  const fn = new Map<string, FunctionCost>();
  const files = new Map<string, number>();
  let idle = 0;
  let gc = 0;
  let total = 0;
  for (const [id, us] of selfUs) {
    total += us;
    const node = byId.get(id);
    if (!node) continue;
    const k = keyOf(node.callFrame);
    if (k.name === "(idle)") idle += us;
    if (k.name === "(garbage collector)") gc += us;
    const fkey = `${k.name}@${k.where}`;
    let f = fn.get(fkey);
    if (!f) {
      f = { name: k.name, where: k.where, selfMs: 0, totalMs: 0 };
      fn.set(fkey, f);
    }
    f.selfMs += us / 1000;
    const file = node.callFrame.url === "" ? k.name : shortUrl(node.callFrame.url);
    files.set(file, (files.get(file) ?? 0) + us / 1000);
    // total: every distinct function on this sample's stack
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (!n) break;
      const kk = keyOf(n.callFrame);
      const key = `${kk.name}@${kk.where}`;
      if (seen.has(key)) continue;
      seen.add(key);
      let g = fn.get(key);
      if (!g) {
        g = { name: kk.name, where: kk.where, selfMs: 0, totalMs: 0 };
        fn.set(key, g);
      }
      g.totalMs += us / 1000;
    }
  }
  return {
    wallMs: (p.endTime - p.startTime) / 1000,
    idleMs: idle / 1000,
    gcMs: gc / 1000,
    busyMs: (total - idle) / 1000,
    functions: [...fn.values()],
    files: [...files.entries()]
      .map(([file, selfMs]) => ({ file, selfMs }))
      .sort((a, b) => b.selfMs - a.selfMs),
  };
}

/** Markdown report: overview, top functions by self time, by total time, and files. */
export function renderProfile(title: string, s: ProfileSummary, top = 15): string {
  const pctOf = (ms: number) => `${((100 * ms) / Math.max(1, s.wallMs)).toFixed(1)}%`;
  const ms = (v: number) => v.toFixed(0);
  let out = `### ${title}\n\n`;
  out +=
    `wall ${ms(s.wallMs)} ms: busy ${ms(s.busyMs)} ms (${pctOf(s.busyMs)}), ` +
    `idle ${ms(s.idleMs)} ms (${pctOf(s.idleMs)}), GC ${ms(s.gcMs)} ms (${pctOf(s.gcMs)})\n\n`;
  const skip = new Set(["(root)", "(idle)", "(program)"]);
  const bySelf = s.functions
    .filter((f) => !skip.has(f.name))
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, top);
  out += "Top functions by self time:\n\n";
  out += markdownTable(
    [
      ["self ms", "% wall", "total ms", "function", "where"],
      ...bySelf.map((f) => [ms(f.selfMs), pctOf(f.selfMs), ms(f.totalMs), f.name, f.where]),
    ],
    ["right", "right", "right", "left", "left"],
  );
  const byTotal = s.functions
    .filter((f) => !skip.has(f.name) && f.where !== "" && !f.where.startsWith("node:internal"))
    .sort((a, b) => b.totalMs - a.totalMs)
    .slice(0, top);
  out += "\nTop project/native functions by total (inclusive) time:\n\n";
  out += markdownTable(
    [
      ["total ms", "% wall", "self ms", "function", "where"],
      ...byTotal.map((f) => [ms(f.totalMs), pctOf(f.totalMs), ms(f.selfMs), f.name, f.where]),
    ],
    ["right", "right", "right", "left", "left"],
  );
  out += "\nSelf time by file:\n\n";
  out += markdownTable(
    [
      ["self ms", "% wall", "file"],
      ...s.files.slice(0, top).map((f) => [ms(f.selfMs), pctOf(f.selfMs), f.file]),
    ],
    ["right", "right", "left"],
  );
  return out;
}

export function loadProfile(path: string): CpuProfile {
  return JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const args = process.argv.slice(2);
  const t = args.indexOf("--top");
  const top = t >= 0 ? Number(args[t + 1]) || 15 : 15;
  const files = args.filter((a, i) => !a.startsWith("--") && (t < 0 || i !== t + 1));
  if (files.length === 0) {
    process.stderr.write("usage: cpuprofile FILE.cpuprofile... [--top N]\n");
    process.exitCode = 2;
  } else {
    for (const f of files)
      process.stdout.write(`${renderProfile(f, summarizeProfile(loadProfile(f)), top)}\n`);
  }
}
