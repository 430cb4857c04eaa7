// A throwaway PostgreSQL cluster for tests and local runs: `initdb` + `pg_ctl` from the machine's
// PostgreSQL 15 (Debian package `postgresql`), in a directory of its own, listening only on
// 127.0.0.1 on a free port, trust authentication, the unix socket inside the cluster directory.
//
// PostgreSQL refuses to run as root; sessions and CI run as root, so then every server-side
// command runs as the `postgres` user (`runuser -u postgres --`) on a directory chowned to it.
// fsync stays on: durable commits are the point of the PostgreSQL store, and what we measure.
// (initdb itself runs with --no-sync: syncing the template files of a throwaway cluster only
// costs start-up time and protects nothing.)

import { execFile, spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { appendFile, chmod, chown, mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";

export const DEFAULT_PG_BIN = "/usr/lib/postgresql/15/bin";

export interface PgCluster {
  /** The cluster directory (data/, sock/, postgres.log inside). */
  dir: string;
  port: number;
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  /** The URL of another database of this cluster. */
  urlOf(database: string): string;
  /** CREATE DATABASE name (name: [a-z0-9_]+); resolves with its URL. */
  createDatabase(name: string): Promise<string>;
  /** Runs SQL through psql on a database; resolves with psql's unaligned, tuples-only output. */
  psql(sql: string, database?: string): Promise<string>;
  /** pg_ctl restart -m fast: every client connection is cut, the cluster comes back. */
  restart(): Promise<void>;
  /** pg_ctl stop -m fast. Idempotent. */
  stop(): Promise<void>;
  /** The postmaster's pid (from data/postmaster.pid), null when it is not running. */
  pid(): number | null;
}

export interface PgClusterOptions {
  /** Directory for the cluster; created if missing, dedicated to it (chowned when root). */
  dir: string;
  /** Where initdb/pg_ctl live (default $PG_BIN or /usr/lib/postgresql/15/bin). */
  bin?: string;
  /** Extra postgresql.conf settings. */
  settings?: Readonly<Record<string, string | number>>;
}

export class PgClusterError extends Error {
  override name = "PgClusterError";
}

/** Why startPgCluster cannot work here (the binaries are missing), or null. */
export function pgClusterUnavailable(bin = process.env.PG_BIN ?? DEFAULT_PG_BIN): string | null {
  const initdb = join(bin, "initdb");
  if (existsSync(initdb) && existsSync(join(bin, "pg_ctl"))) return null;
  return `PostgreSQL 15 not found (${initdb}): install Debian package postgresql (apt-get install -y postgresql)`;
}

const isRoot = () => typeof process.getuid === "function" && process.getuid() === 0;

function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const [file, argv] = isRoot() ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args];
  return new Promise((res, rej) => {
    execFile(file, argv, { timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err) rej(new PgClusterError(`${cmd} ${args[0] ?? ""} failed: ${stderr || err.message}`));
      else res(stdout);
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

/** As root: the postgres user must be able to reach the directory (search bit on ancestors). */
async function prepareDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  if (!isRoot()) return;
  const uid = Number(spawnSync("id", ["-u", "postgres"], { encoding: "utf8" }).stdout.trim());
  const gid = Number(spawnSync("id", ["-g", "postgres"], { encoding: "utf8" }).stdout.trim());
  if (!Number.isInteger(uid) || uid <= 0) {
    throw new PgClusterError("no `postgres` user: install Debian package postgresql");
  }
  await chown(dir, uid, gid);
  await chmod(dir, 0o700);
  for (let p = dirname(dir); ; p = dirname(p)) {
    const st = statSync(p);
    if ((st.mode & 0o001) === 0 && st.uid !== uid) await chmod(p, st.mode | 0o001);
    if (p === dirname(p)) break;
  }
}

/** Starts a new cluster in opts.dir (which must not hold one already). */
export async function startPgCluster(opts: PgClusterOptions): Promise<PgCluster> {
  const bin = opts.bin ?? process.env.PG_BIN ?? DEFAULT_PG_BIN;
  const initdb = join(bin, "initdb");
  const pgCtl = join(bin, "pg_ctl");
  const psqlBin = existsSync(join(bin, "psql")) ? join(bin, "psql") : "psql";
  const missing = pgClusterUnavailable(bin);
  if (missing !== null) throw new PgClusterError(missing);
  const dir = resolve(opts.dir);
  const data = join(dir, "data");
  const sock = join(dir, "sock");
  const logFile = join(dir, "postgres.log");
  await prepareDir(dir);
  await run(initdb, [
    "-D",
    data,
    "-A",
    "trust",
    "-U",
    "postgres",
    "-E",
    "UTF8",
    "--locale=C",
    "--no-sync",
  ]);
  await run("mkdir", ["-p", sock]);

  let port = 0;
  let lastErr: unknown = null;
  // A free port can be taken between probing and binding: try a few.
  for (let attempt = 0; attempt < 3 && port === 0; attempt++) {
    const candidate = await freePort();
    const conf = {
      listen_addresses: "'127.0.0.1'",
      port: candidate,
      unix_socket_directories: `'${sock}'`,
      fsync: "on",
      synchronous_commit: "on",
      max_connections: 300,
      ...opts.settings,
    };
    const text = Object.entries(conf)
      .map(([k, v]) => `${k} = ${v}\n`)
      .join("");
    // Appended: a later setting wins, so a retry on another port just appends again.
    await appendFile(join(data, "postgresql.conf"), `\n# quiniela\n${text}`);
    try {
      await run(pgCtl, ["-D", data, "-l", logFile, "-w", "-t", "60", "start"], 90_000);
      port = candidate;
    } catch (err) {
      lastErr = err;
    }
  }
  if (port === 0) throw lastErr;

  let stopped = false;
  const stopSync = () => {
    if (stopped) return;
    stopped = true;
    const args = ["-D", data, "-m", "immediate", "-w", "stop"];
    spawnSync(
      isRoot() ? "runuser" : pgCtl,
      isRoot() ? ["-u", "postgres", "--", pgCtl, ...args] : args,
    );
  };
  // Never leave a cluster behind if the owner exits without stopping it.
  process.once("exit", stopSync);

  const urlOf = (db: string) => `postgres://postgres@127.0.0.1:${port}/${db}`;
  const psql = (sql: string, database = "postgres") =>
    new Promise<string>((res, rej) => {
      execFile(
        psqlBin,
        ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", urlOf(database), "-c", sql],
        { encoding: "utf8", timeout: 60_000, maxBuffer: 1 << 30 },
        (err, stdout, stderr) =>
          err ? rej(new PgClusterError(`psql: ${stderr || err.message}`)) : res(stdout),
      );
    });
  return {
    dir,
    port,
    url: urlOf("postgres"),
    urlOf,
    psql,
    async createDatabase(name) {
      if (!/^[a-z0-9_]+$/.test(name)) throw new PgClusterError(`bad database name ${name}`);
      await psql(`CREATE DATABASE ${name}`);
      return urlOf(name);
    },
    async restart() {
      await run(pgCtl, ["-D", data, "-l", logFile, "-m", "fast", "-w", "-t", "60", "restart"]);
    },
    pid() {
      if (stopped) return null;
      try {
        const pid = Number(readFileSync(join(data, "postmaster.pid"), "latin1").split("\n", 1)[0]);
        return Number.isInteger(pid) && pid > 0 ? pid : null;
      } catch {
        return null;
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      process.off("exit", stopSync);
      await run(pgCtl, ["-D", data, "-m", "fast", "-w", "-t", "60", "stop"]).catch(() => undefined);
    },
  };
}
