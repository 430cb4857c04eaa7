// The project's programs as the tools and the tests start them: the built bundles
// (scripts/bundle.mjs), run by node on 127.0.0.1 with an explicit environment.

import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { listeningRe } from "./logs.js";
import { ManagedProcess } from "./proc.js";
import { sleep } from "./wait.js";

/** The repository (this file is dist/kit/programs.js). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** The programs as shipped: the bundles of scripts/bundle.mjs. */
export const SERVER_JS = join(ROOT, "dist/bin/quiniela-server.js");
export const AGENCY_JS = join(ROOT, "dist/bin/quiniela-agency.js");
/** As in the server's Dockerfile and bin: a small young generation keeps its memory flat. */
export const SERVER_NODE_ARGS = ["--max-semi-space-size=2"];
/** The load generator's node flags: those of the quiniela-agency bin's shebang. */
export const FLEET_NODE_ARGS = ["--max-semi-space-size=2"];
/** The course's agency files: ../shared/data next to the repository (or $SHARED_DIR/data). */
export const COURSE_DATA = join(
  process.env.SHARED_DIR ? resolve(process.env.SHARED_DIR) : resolve(ROOT, "../shared"),
  "data",
);

/** Why the programs cannot be started (not built yet), or null. */
export function checkBuilt(): string | null {
  for (const p of [SERVER_JS, AGENCY_JS]) {
    if (!existsSync(p)) return `${p} is missing: run \`npm run build\` first`;
  }
  return null;
}

export interface RunOptions {
  args?: string[];
  nodeArgs?: string[];
  /** A command that runs node, e.g. `["prlimit", "--fsize=4096", "--"]`. */
  wrap?: string[];
  /** Descriptors the program inherits as its fds 3, 4, … (a listening socket). */
  passFds?: number[];
}

/**
 * Runs `[wrap] node [nodeArgs] script [args]` with only PATH and `env` in its environment,
 * keeping its output lines (the tests' way).
 */
export function run(
  script: string,
  env: Record<string, string>,
  cwd: string,
  { args = [], nodeArgs = [], wrap = [], passFds = [] }: RunOptions = {},
): ManagedProcess {
  const argv = [...wrap, process.execPath, ...nodeArgs, script, ...args];
  return new ManagedProcess({
    command: argv[0]!,
    args: argv.slice(1),
    cwd,
    env: { PATH: process.env.PATH ?? "", ...env },
    keepOutput: true,
    passFds,
  });
}

export interface ServerProc extends ManagedProcess {
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
  const line = await p.waitFor(listeningRe);
  const port = Number(listeningRe.exec(line)![1]);
  return Object.assign(p, { port, dir: cwd });
}

/** Spawns the server on a fixed port without waiting for it to listen. */
export function spawnServer(
  port: number,
  env: Record<string, string>,
  dir: string,
): ManagedProcess {
  return run(
    SERVER_JS,
    {
      SERVER_IP: "127.0.0.1",
      SERVER_LISTEN_BACKLOG: "128",
      LOGGING_LEVEL: "INFO",
      ...env,
      SERVER_PORT: String(port),
    },
    dir,
  );
}

/** Starts the server on `port` (the same port after a crash) and waits until it listens. */
export async function startServerOn(
  port: number,
  env: Record<string, string>,
  dir: string,
): Promise<ServerProc> {
  for (let attempt = 1; ; attempt++) {
    const p = spawnServer(port, env, dir);
    const listening = p.waitFor(listeningRe, 30_000).then(() => true);
    const exited = p.exited.then(() => false);
    if (await Promise.race([listening, exited])) return Object.assign(p, { port, dir });
    // EADDRINUSE right after a kill: the old listener may not be fully gone yet
    if (attempt >= 5 || !/EADDRINUSE/.test(p.stderr)) {
      throw new Error(`server did not start on port ${port}: ${p.stderr}\n${p.lines.join("\n")}`);
    }
    await sleep(200);
  }
}

export function startAgency(
  id: number,
  port: number,
  env: Record<string, string>,
  cwd: string,
  opts: RunOptions = {},
): ManagedProcess {
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
