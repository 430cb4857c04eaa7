// Configuration: a file (INI for the server, YAML for the agency, as in the course) with
// environment variables of the documented names taking precedence. Loading is a pure function of
// (file text, env) so it is unit-tested without touching the process.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { type Endpoint, parseAddressList, parseEndpoint } from "./address.js";
import { formatDuration, parseDuration } from "./duration.js";
import { FatalCode, QuinielaError } from "./errors.js";
import { type Level, parseLevel } from "./log.js";

export type Env = Record<string, string | undefined>;

// The parsers are loaded only when there is a file to parse: loading `yaml` (74 modules) cost
// an agency about as much CPU as starting Node itself (CPU profile of a course-data run), and
// local runs, the bench and the tests have no config file at all.
const lazyRequire = createRequire(import.meta.url);
const parseIni = (text: string): unknown =>
  (lazyRequire("ini") as typeof import("ini")).parse(text);
const parseYaml = (text: string): unknown =>
  (lazyRequire("yaml") as typeof import("yaml")).parse(text);

function bad(message: string): never {
  throw new QuinielaError(FatalCode.BAD_CONFIG, message);
}

function intIn(name: string, raw: string | number | undefined, min: number, max: number): number {
  const text = String(raw ?? "").trim();
  if (!/^-?\d+$/.test(text)) bad(`${name} must be an integer, got "${raw}"`);
  const n = Number(text);
  if (n < min || n > max) bad(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function durationMs(name: string, raw: string | number | undefined): number {
  const ms = parseDuration(String(raw ?? ""));
  if (ms === null || ms < 0) bad(`${name} must be a duration like 5s or 100ms, got "${raw}"`);
  return ms;
}

function level(name: string, raw: string | undefined): { level: Level; text: string } {
  const text = String(raw ?? "").trim();
  const l = parseLevel(text);
  if (!l) bad(`${name} must be a log level (DEBUG, INFO, WARNING, ERROR), got "${raw}"`);
  return { level: l, text };
}

/** Reads a config file; a missing file is fine unless the user named it explicitly. */
export function readConfigText(path: string, explicit: boolean): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && !explicit) return "";
    bad(`cannot read config file ${path}: ${code ?? String(err)}`);
  }
}

// ---------------------------------------------------------------- server (config.ini)

export type SyncMode = "fdatasync" | "fsync" | "none";

export interface ServerConfig {
  port: number;
  ip: string;
  listenBacklog: number;
  /**
   * A socket already listening, inherited as this file descriptor (SERVER_LISTEN_FD; null: bind
   * SERVER_IP:SERVER_PORT). A launcher that binds first can start the agencies together with
   * the server: their connections wait in the socket's backlog until it accepts them.
   */
  listenFd: number | null;
  loggingLevel: Level;
  loggingLevelText: string;
  agencies: number;
  storagePath: string;
  sync: SyncMode;
  idleTimeoutMs: number;
  /** An agency connection must send HELLO by then (HELLO_TIMEOUT). */
  helloTimeoutMs: number;
  /** A new connection must send its first byte by then (HELLO_TIMEOUT). */
  firstByteTimeoutMs: number;
  /** A frame, once begun, must be complete by then (HELLO_TIMEOUT). */
  frameTimeoutMs: number;
  /** A TLS handshake must be done by then (HELLO_TIMEOUT). */
  tlsHandshakeTimeoutMs: number;
  maxConnections: number;
  /** Per-agency secrets (empty: identification is by agency number alone). */
  secrets: Map<number, string>;
  /** PostgreSQL URL shared by the server replicas; empty: the file store (storagePath). */
  databaseUrl: string;
  /** Connections of this server to PostgreSQL, at most. */
  databasePoolSize: number;
  /** How long to keep retrying an unreachable PostgreSQL at start-up before giving up. */
  databaseRetryMs: number;
  /** PEM files; cert and key set: agencies connect over TLS (see server/src/tls.ts). */
  tlsCertFile: string;
  tlsKeyFile: string;
  /** Set: agencies must present a certificate signed by this CA, CN `agency-{id}`. */
  tlsClientCaFile: string;
}

function parseSecrets(raw: string | undefined): Map<number, string> {
  const out = new Map<number, string>();
  const text = (raw ?? "").trim();
  if (text === "") return out;
  for (const part of text.split(",")) {
    const m = /^\s*(\d+)\s*[:=]\s*(\S+)\s*$/.exec(part);
    if (!m) bad(`AGENCY_SECRETS must look like "1:secret1,2:secret2", got "${part}"`);
    out.set(Number(m[1]), m[2]!);
  }
  return out;
}

function databaseUrl(raw: string): string {
  if (raw !== "" && !/^postgres(ql)?:\/\/[^\s]+$/.test(raw)) {
    bad(`DATABASE_URL must look like postgres://user:pass@host:port/db, got "${redactUrl(raw)}"`);
  }
  return raw;
}

/** A database URL without its password, for logs and messages. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@\s]*):[^@/\s]*@/i, "$1:***@");
}

export function loadServerConfig(iniText: string, env: Env): ServerConfig {
  const parsed = (iniText.trim() === "" ? {} : parseIni(iniText)) as Record<string, unknown>;
  // configparser semantics: keys are case-insensitive; [DEFAULT] (or no section) holds them.
  const file = new Map<string, string>();
  const take = (obj: unknown) => {
    if (obj && typeof obj === "object") {
      for (const [k, v] of Object.entries(obj)) {
        if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") {
          file.set(k.toUpperCase(), String(v).trim());
        }
      }
    }
  };
  take(parsed);
  for (const [k, v] of Object.entries(parsed)) if (k.toUpperCase() === "DEFAULT") take(v);
  const get = (key: string, dflt: string): string => {
    const e = env[key];
    if (e !== undefined && e !== "") return e;
    return file.get(key) ?? dflt;
  };
  const lvl = level("LOGGING_LEVEL", get("LOGGING_LEVEL", "INFO"));
  const sync = get("STORAGE_SYNC", "fdatasync").toLowerCase();
  const helloTimeoutMs = durationMs("HELLO_TIMEOUT", get("HELLO_TIMEOUT", "10s"));
  const listenFd = get("SERVER_LISTEN_FD", "").trim();
  if (sync !== "fdatasync" && sync !== "fsync" && sync !== "none") {
    bad(`STORAGE_SYNC must be fdatasync, fsync or none, got "${sync}"`);
  }
  return {
    port: intIn("SERVER_PORT", get("SERVER_PORT", "12345"), 0, 65535),
    ip: get("SERVER_IP", "0.0.0.0"),
    listenBacklog: intIn("SERVER_LISTEN_BACKLOG", get("SERVER_LISTEN_BACKLOG", "5"), 0, 65535),
    listenFd: listenFd === "" ? null : intIn("SERVER_LISTEN_FD", listenFd, 3, 65535),
    loggingLevel: lvl.level,
    loggingLevelText: lvl.text,
    agencies: intIn("AGENCIES", get("AGENCIES", "5"), 0, 65535),
    storagePath: get("STORAGE_FILEPATH", "./bets.csv"),
    sync,
    idleTimeoutMs: durationMs("IDLE_TIMEOUT", get("IDLE_TIMEOUT", "60s")),
    helloTimeoutMs,
    firstByteTimeoutMs: helloTimeoutMs,
    frameTimeoutMs: helloTimeoutMs,
    tlsHandshakeTimeoutMs: helloTimeoutMs,
    maxConnections: intIn("MAX_CONNECTIONS", get("MAX_CONNECTIONS", "1024"), 1, 1_000_000),
    secrets: parseSecrets(get("AGENCY_SECRETS", "")),
    databaseUrl: databaseUrl(get("DATABASE_URL", "").trim()),
    databasePoolSize: intIn("DATABASE_POOL_SIZE", get("DATABASE_POOL_SIZE", "8"), 2, 1000),
    databaseRetryMs: durationMs("DATABASE_RETRY", get("DATABASE_RETRY", "30s")),
    ...serverTlsFiles(
      get("TLS_CERT_FILE", ""),
      get("TLS_KEY_FILE", ""),
      get("TLS_CLIENT_CA_FILE", ""),
    ),
  };
}

function serverTlsFiles(cert: string, key: string, ca: string) {
  if ((cert === "") !== (key === "")) bad("TLS_CERT_FILE and TLS_KEY_FILE go together");
  if (ca !== "" && cert === "") bad("TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE");
  return { tlsCertFile: cert, tlsKeyFile: key, tlsClientCaFile: ca };
}

// ---------------------------------------------------------------- agency (config.yaml)

export type ClientMode = "echo" | "bet" | "batch";

export interface ClientConfig {
  id: number;
  /** As configured (logged as is): one `host:port` or a comma-separated list of them. */
  serverAddress: string;
  /** The parsed list; an agency starts at entry (id-1) mod n (see address.ts). */
  servers: Endpoint[];
  /** The first entry (kept for callers that want one address). */
  host: string;
  port: number;
  loopAmount: number;
  loopPeriodMs: number;
  loopPeriodText: string;
  logLevel: Level;
  logLevelText: string;
  batchMaxAmount: number;
  /** Batches sent and not yet acknowledged, at most. */
  window: number;
  mode: ClientMode;
  dataFile: string;
  secret: string;
  /** How long to keep retrying while the server is unreachable. */
  retryBudgetMs: number;
  /** Pause before the agency starts working (see generar-compose.sh). */
  startDelayMs: number;
  /** TLS to the server (any set: TLS on; see client/src/tls.ts). `{id}` in a path: the agency id. */
  tlsCaFile: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  /** The name the server's certificate must carry; empty: the host of server.address. */
  tlsServername: string;
}

function lookup(doc: unknown, path: string): unknown {
  let cur: unknown = doc;
  for (const key of path.split(".")) {
    if (!cur || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

export function splitAddress(address: string): { host: string; port: number } {
  return parseEndpoint(address);
}

/**
 * Agency ids for the load generator: `1-1000`, `1-5,8`, `3` (ranges inclusive, spaces ignored).
 * Sorted, without duplicates.
 */
export function parseAgencyIds(text: string, max = 100_000): number[] {
  const ids = new Set<number>();
  for (const part of text.split(",")) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) bad(`agencies must look like "1-1000" or "1-5,8", got "${text}"`);
    const lo = intIn("agency id", m[1], 1, 0xffffffff);
    const hi = m[2] === undefined ? lo : intIn("agency id", m[2], 1, 0xffffffff);
    if (hi < lo) bad(`agency range ${lo}-${hi} is empty`);
    if (hi - lo + 1 + ids.size > max) bad(`at most ${max} agencies in one process`);
    for (let id = lo; id <= hi; id++) ids.add(id);
  }
  return [...ids].sort((a, b) => a - b);
}

export function loadClientConfig(yamlText: string, env: Env): ClientConfig {
  let doc: unknown;
  try {
    doc = yamlText.trim() === "" ? {} : parseYaml(yamlText);
  } catch (err) {
    bad(`config.yaml is not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  const get = (envKey: string, path: string, dflt: string): string => {
    const e = env[envKey];
    if (e !== undefined && e !== "") return e;
    const v = lookup(doc, path);
    if (v === undefined || v === null) return dflt;
    if (typeof v === "object") bad(`${path} must be a scalar`);
    return String(v);
  };
  const serverAddress = get("CLI_SERVER_ADDRESS", "server.address", "localhost:12345");
  const servers = parseAddressList(serverAddress);
  const { host, port } = servers[0]!;
  const loopPeriodMs = durationMs("loop.period", get("CLI_LOOP_PERIOD", "loop.period", "5s"));
  const lvl = level("log.level", get("CLI_LOG_LEVEL", "log.level", "INFO"));
  const mode = get("CLI_MODE", "mode", "batch").toLowerCase();
  if (mode !== "echo" && mode !== "bet" && mode !== "batch") {
    bad(`CLI_MODE must be echo, bet or batch, got "${mode}"`);
  }
  const id = intIn("CLI_ID", get("CLI_ID", "id", "1"), 1, 0xffffffff);
  return {
    id,
    serverAddress,
    servers,
    host,
    port,
    loopAmount: intIn("loop.amount", get("CLI_LOOP_AMOUNT", "loop.amount", "5"), 0, 1e9),
    loopPeriodMs,
    loopPeriodText: formatDuration(loopPeriodMs),
    logLevel: lvl.level,
    logLevelText: lvl.text,
    batchMaxAmount: intIn(
      "batch.maxAmount",
      get("CLI_BATCH_MAXAMOUNT", "batch.maxAmount", "100"),
      1,
      1_000_000_000, // any size: 8 kB frames bound what a batch really holds
    ),
    window: intIn("batch.window", get("CLI_BATCH_WINDOW", "batch.window", "32"), 1, 1024),
    mode,
    dataFile: get("CLI_DATA_FILE", "data.file", `./.data/agency-${id}.csv`),
    secret: get("CLI_SECRET", "secret", ""),
    retryBudgetMs: durationMs("retry budget", get("CLI_RETRY_BUDGET", "server.retryBudget", "60s")),
    // environment only: set by generar-compose.sh, not a config.yaml key
    startDelayMs: durationMs("CLI_START_DELAY", env.CLI_START_DELAY || "0s"),
    ...clientTlsFiles(
      get("CLI_TLS_CA_FILE", "tls.ca", ""),
      get("CLI_TLS_CERT_FILE", "tls.cert", ""),
      get("CLI_TLS_KEY_FILE", "tls.key", ""),
      get("CLI_TLS_SERVERNAME", "tls.servername", ""),
    ),
  };
}

function clientTlsFiles(ca: string, cert: string, key: string, servername: string) {
  if ((cert === "") !== (key === "")) bad("CLI_TLS_CERT_FILE and CLI_TLS_KEY_FILE go together");
  if (servername !== "" && ca === "" && cert === "") {
    bad("CLI_TLS_SERVERNAME needs TLS on (CLI_TLS_CA_FILE or CLI_TLS_CERT_FILE)");
  }
  return { tlsCaFile: ca, tlsCertFile: cert, tlsKeyFile: key, tlsServername: servername };
}
