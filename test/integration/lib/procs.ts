// Starts the real built programs as child processes on loopback and collects their log lines.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "../../../..");
/** The programs as shipped: the bundles of scripts/bundle.mjs. */
export const SERVER_JS = join(ROOT, "dist/bin/quiniela-server.js");
export const AGENCY_JS = join(ROOT, "dist/bin/quiniela-agency.js");
/** The course's agency files: ../shared/data next to the repository (or $SHARED_DIR/data). */
export const COURSE_DATA = join(
  process.env.SHARED_DIR ? resolve(process.env.SHARED_DIR) : resolve(ROOT, "../shared"),
  "data",
);

export interface Proc {
  child: ChildProcess;
  lines: string[];
  stderr: string;
  exited: Promise<number | null>;
  /** Resolves with the first line matching `re` (already seen or future). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
}

export interface RunOptions {
  args?: string[];
  nodeArgs?: string[];
  /** A command that runs node, e.g. `["prlimit", "--fsize=4096", "--"]`. */
  wrap?: string[];
}

/** Runs `[wrap] node [nodeArgs] script [args]`, collecting its output lines. */
export function run(
  script: string,
  env: Record<string, string>,
  cwd: string,
  { args = [], nodeArgs = [], wrap = [] }: RunOptions = {},
): Proc {
  const argv = [...wrap, process.execPath, ...nodeArgs, script, ...args];
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd,
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const watchers: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  let partial = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (d: string) => {
    partial += d;
    const parts = partial.split("\n");
    partial = parts.pop()!;
    for (const l of parts) {
      lines.push(l);
      for (let i = watchers.length - 1; i >= 0; i--) {
        if (watchers[i]!.re.test(l)) {
          watchers[i]!.resolve(l);
          watchers.splice(i, 1);
        }
      }
    }
  });
  const proc: Proc = {
    child,
    lines,
    stderr: "",
    exited: new Promise((res) => child.on("exit", (code) => res(code))),
    waitFor(re, timeoutMs = 20_000) {
      const seen = lines.find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((res, rej) => {
        const t = setTimeout(
          () =>
            rej(new Error(`timeout waiting for ${re}; got:\n${lines.join("\n")}\n${proc.stderr}`)),
          timeoutMs,
        );
        watchers.push({
          re,
          resolve: (l) => {
            clearTimeout(t);
            res(l);
          },
        });
      });
    },
  };
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (d: string) => {
    proc.stderr += d;
  });
  return proc;
}

export interface ServerProc extends Proc {
  port: number;
  dir: string;
}

/** Starts a server on a free port in `dir` (a new temp dir by default). */
export async function startServer(
  env: Record<string, string> = {},
  dir?: string,
  opts: RunOptions = {},
): Promise<ServerProc> {
  const cwd = dir ?? tempDir();
  const p = run(
    SERVER_JS,
    { SERVER_IP: "127.0.0.1", SERVER_PORT: "0", LOGGING_LEVEL: "DEBUG", ...env },
    cwd,
    opts,
  );
  const line = await p.waitFor(/action: accept_connections \| result: in_progress \| port: \d+/);
  const port = Number(/port: (\d+)/.exec(line)![1]);
  return Object.assign(p, { port, dir: cwd });
}

export function startAgency(
  id: number,
  port: number,
  env: Record<string, string>,
  cwd: string,
  opts: RunOptions = {},
): Proc {
  return run(
    AGENCY_JS,
    { CLI_ID: String(id), CLI_SERVER_ADDRESS: `127.0.0.1:${port}`, ...env },
    cwd,
    opts,
  );
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "quiniela-it-"));
}

export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Parses a log line with the course's rules: the `action:` message split on `|`. */
export function parseLine(line: string): Record<string, string> | null {
  const at = line.indexOf("action:");
  if (at < 0) return null;
  const parts = line.slice(at).split("|");
  const out: Record<string, string> = {};
  for (const p of parts) {
    const c = p.lastIndexOf(":");
    if (c < 0) throw new Error(`detail without colon in ${line}`);
    out[p.slice(0, c).trim()] = p.slice(c + 1).trim();
  }
  if (!["success", "fail", "in_progress"].includes(out.result ?? "")) {
    throw new Error(`bad result in ${line}`);
  }
  return out;
}

export function actions(lines: string[], action: string): Array<Record<string, string>> {
  return lines.map(parseLine).filter((m): m is Record<string, string> => m?.action === action);
}

export async function stop(p: Proc): Promise<number | null> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGTERM");
  return p.exited;
}
