// Shared machinery of the Docker end-to-end suite (test/e2e/*.test.mjs).
//
// The flow follows the course's black-box tests: write client/config.yaml and
// server/config.ini, run generar-compose.sh, `docker compose up -d`, read
// `docker compose logs -f` line by line, parse the `action: … | result: …` lines and
// the `<container> exited with code N` lines, then stop and `down`. The files those
// steps overwrite (the two configs, .data/ and docker-compose-dev.yaml) are backed up
// before a test file runs and restored after it, also on Ctrl-C.
//
// Docker unusable: with CI=true the suite fails loudly; otherwise it is skipped with
// the reason. Images are built once per `scripts/e2e.sh` run (it sets E2E_IMAGES=ready);
// a test file run on its own builds them itself (the layer cache keeps that fast).

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe } from "node:test";
import { fileURLToPath } from "node:url";
// The action names as the programs spell them (scripts/e2e.sh builds dist first).
import { Action } from "../../../dist/shared/src/actions.js";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const COMPOSE_FILE = "docker-compose-dev.yaml";
export const MOCK_COMPOSE_FILE = join(ROOT, "test/e2e/mocks/docker-compose-mock.yaml");
export const RESULTS_DIR = join(ROOT, "results/e2e");
export const IMAGES = ["server:latest", "client:latest"];
export const IN_CI = process.env.CI === "true" || process.env.CI === "1";

const SECOND = 1000;
/** Hang guard for one compose run (not a performance bound). */
export const RUN_TIMEOUT = Number(process.env.E2E_RUN_TIMEOUT_S ?? 180) * SECOND;

// ---------------------------------------------------------------------------------
// Processes

/** Runs a command synchronously in the repo root; returns { status, stdout, stderr }. */
export function run(cmd, args, { env, input, timeout = 300 * SECOND, cwd = ROOT } = {}) {
  const r = spawnSync(cmd, args, {
    cwd,
    env: { ...process.env, ...env },
    input,
    timeout,
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  return {
    status: r.error ? -1 : r.status,
    stdout: r.stdout ?? "",
    stderr: (r.stderr ?? "") + (r.error ? `\n${r.error.message}` : ""),
  };
}

/** Like run(), but throws with the command's output when it exits non-zero. */
export function check(cmd, args, opts) {
  const r = run(cmd, args, opts);
  if (r.status !== 0) {
    throw new Error(
      `\`${[cmd, ...args].join(" ")}\` exited with ${r.status}\n${r.stdout}\n${r.stderr}`.trim(),
    );
  }
  return r;
}

// ---------------------------------------------------------------------------------
// Docker availability and images

let dockerState;
/** { ok: true } or { ok: false, reason } — cached. */
export function dockerStatus() {
  if (dockerState) return dockerState;
  const info = run("docker", ["info", "--format", "{{.ServerVersion}}"], { timeout: 30 * SECOND });
  if (info.status !== 0) {
    dockerState = { ok: false, reason: `\`docker info\` failed: ${info.stderr.trim()}` };
    return dockerState;
  }
  const compose = run("docker", ["compose", "version"], { timeout: 30 * SECOND });
  if (compose.status !== 0) {
    dockerState = {
      ok: false,
      reason: `\`docker compose version\` failed (no Compose v2 plugin or docker-offline shim): ${compose.stderr.trim()}`,
    };
    return dockerState;
  }
  dockerState = { ok: true, compose: compose.stdout.trim() };
  return dockerState;
}

/**
 * Value for the `skip` option of a describe(): false when Docker works, a message
 * when it does not. Under CI=true an unusable Docker throws instead, so the file fails.
 */
export function skipUnlessDocker() {
  const s = dockerStatus();
  if (s.ok) return false;
  const msg = `Docker is not usable: ${s.reason}`;
  if (IN_CI) {
    throw new Error(
      `${msg}\nCI=true: the Docker end-to-end suite must run. Run ../shared/docker-offline/setup.`,
    );
  }
  return `${msg} (skipped; with CI=true this is a failure)`;
}

function imageExists(tag) {
  return run("docker", ["image", "inspect", tag], { timeout: 30 * SECOND }).status === 0;
}

/** Builds server:latest and client:latest, unless scripts/e2e.sh already did in this run. */
export function ensureImages() {
  if (process.env.E2E_IMAGES === "ready" && IMAGES.every(imageExists)) return;
  for (const [file, tag] of [
    ["./server/Dockerfile", "server:latest"],
    ["./client/Dockerfile", "client:latest"],
  ]) {
    check("docker", ["build", "--force-rm", "-q", "-f", file, "-t", tag, "."], {
      timeout: 900 * SECOND,
    });
  }
}

// ---------------------------------------------------------------------------------
// Files the tests overwrite: backup / restore

const BACKED_UP = ["server/config.ini", "client/config.yaml", ".data", COMPOSE_FILE];
let backupDir = null;

function restoreNow() {
  if (!backupDir) return;
  for (const rel of BACKED_UP) {
    const target = join(ROOT, rel);
    const saved = join(backupDir, rel);
    rmSync(target, { recursive: true, force: true });
    if (existsSync(saved)) {
      mkdirSync(dirname(target), { recursive: true });
      cpSync(saved, target, { recursive: true, preserveTimestamps: true });
    }
  }
  rmSync(backupDir, { recursive: true, force: true });
  backupDir = null;
}

function onSignal(signal) {
  try {
    composeDown();
  } finally {
    restoreNow();
    process.exit(signal === "SIGINT" ? 130 : 143);
  }
}

export function backupFiles() {
  if (backupDir) return;
  backupDir = mkdtempSync(join(tmpdir(), "tp0-e2e-backup-"));
  for (const rel of BACKED_UP) {
    const source = join(ROOT, rel);
    if (existsSync(source)) {
      mkdirSync(dirname(join(backupDir, rel)), { recursive: true });
      cpSync(source, join(backupDir, rel), { recursive: true, preserveTimestamps: true });
    }
  }
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  process.once("exit", restoreNow);
}

export function restoreFiles() {
  process.removeListener("SIGINT", onSignal);
  process.removeListener("SIGTERM", onSignal);
  process.removeListener("exit", restoreNow);
  restoreNow();
}

/** before() hook of every e2e file: back up, build images, remove leftovers. */
export function setUpSuite() {
  backupFiles();
  ensureImages();
  mkdirSync(RESULTS_DIR, { recursive: true });
  cleanUpContainers();
}

/** after() hook of every e2e file. */
export function tearDownSuite() {
  try {
    cleanUpContainers();
  } finally {
    restoreFiles();
  }
}

/**
 * One e2e file's suite: skipped without Docker (or for `skip`'s reason), setUpSuite then `setUp`
 * before it, `tearDown` then tearDownSuite after it (also when a test failed).
 */
export function dockerSuite(name, body, { skip = skipUnlessDocker(), setUp, tearDown } = {}) {
  describe(name, { skip }, () => {
    before(() => {
      setUpSuite();
      setUp?.();
    });
    after(() => {
      try {
        tearDown?.();
      } finally {
        tearDownSuite();
      }
    });
    body();
  });
}

// ---------------------------------------------------------------------------------
// Configuration, data and compose generation (same formats the course writes)

export function writeServerConfig({
  port = 12345,
  ip = "server",
  listenBacklog = 5,
  loggingLevel = "INFO",
  root = ROOT,
} = {}) {
  // Like the course's tests: exactly the four keys, no trailing newline.
  writeFileSync(
    join(root, "server/config.ini"),
    `[DEFAULT]\nSERVER_PORT = ${port}\nSERVER_IP = ${ip}\nSERVER_LISTEN_BACKLOG = ${listenBacklog}\nLOGGING_LEVEL = ${loggingLevel}`,
  );
}

export function writeClientConfig({
  address = "server:12345",
  loopAmount = 3,
  loopPeriod = "50ms",
  logLevel = "INFO",
  maxAmount = 10,
  root = ROOT,
} = {}) {
  writeFileSync(
    join(root, "client/config.yaml"),
    `server:\n  address: "${address}"\nloop:\n  amount: ${loopAmount}\n  period: "${loopPeriod}"\nlog:\n  level: "${logLevel}"\nbatch:\n  maxAmount: ${maxAmount}\n`,
  );
}

/** Writes .data/agency-{agency}.csv from an array of row strings (LF line endings). */
export function writeAgencyFile(agency, rows) {
  mkdirSync(join(ROOT, ".data"), { recursive: true });
  writeFileSync(join(ROOT, `.data/agency-${agency}.csv`), rows.map((r) => `${r}\n`).join(""));
}

/**
 * `sh generar-compose.sh docker-compose-dev.yaml N`, with CLIENT_MODE when given and
 * SERVER_REPLICAS when `replicas` is given, TLS=1 when `tls` is (else all emptied: the caller's environment
 * never changes what a test runs).
 */
export function generateCompose(clients, mode, { replicas, tls } = {}) {
  const env = {
    CLIENT_MODE: mode ?? "",
    SERVER_REPLICAS: replicas ? String(replicas) : "",
    TLS: tls ? "1" : "",
  };
  check("sh", ["generar-compose.sh", COMPOSE_FILE, String(clients)], { env });
}

/**
 * Everything a run reads: server/config.ini (writeServerConfig's `server` options),
 * client/config.yaml (writeClientConfig's `client` options) and the compose file for
 * `clients` agencies (generateCompose's `mode`, `replicas` and `tls`).
 */
export function setUpProject({ clients, mode, replicas, tls, server, client }) {
  writeServerConfig(server);
  writeClientConfig(client);
  generateCompose(clients, mode, { replicas, tls });
}

// ---------------------------------------------------------------------------------
// Server replicas on PostgreSQL (SERVER_REPLICAS=N)

/** The PostgreSQL service of a replica compose file (generar-compose.sh). */
export const PG = { container: "postgres", user: "quiniela", db: "quiniela" };
export const MAX_REPLICAS = 9;

/** Server containers: `server`, or `server1` … `serverN` with N replicas. */
export const serverNames = (replicas = 0) =>
  replicas > 0 ? Array.from({ length: replicas }, (_, i) => `server${i + 1}`) : ["server"];

/** `psql -tA` inside the postgres container; returns stdout (throws on failure). */
export function psql(sql, { csv = false } = {}) {
  const args = ["exec", PG.container, "psql", "-U", PG.user, "-d", PG.db, "-v", "ON_ERROR_STOP=1"];
  if (!csv) args.push("-tA");
  return check("docker", [...args, "-c", sql], { timeout: 120 * SECOND }).stdout;
}

/** A container's address on tp0_testing_net (null when it has none). */
export function containerIp(container) {
  const r = run("docker", [
    "inspect",
    "-f",
    '{{with index .NetworkSettings.Networks "tp0_testing_net"}}{{.IPAddress}}{{end}}',
    container,
  ]);
  const ip = r.stdout.trim();
  return r.status === 0 && ip !== "" ? ip : null;
}

/**
 * Every parsed line of one container's whole log (`docker logs`, stdout then stderr), as
 * `docker compose logs` would show it (source = the container name). Unlike the followed
 * stream it is complete and in the container's own order once the container is idle.
 */
export function containerMessages(container) {
  const r = check("docker", ["logs", container]);
  const messages = [];
  for (const text of [r.stdout, r.stderr]) {
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      const msg = parseLine(`${container} | ${line}`);
      if (msg) messages.push(msg);
    }
  }
  return messages;
}

// ---------------------------------------------------------------------------------
// Compose

/** `docker compose -f docker-compose-dev.yaml ARGS`, in the repository or in `opts.cwd`. */
export function compose(args, opts) {
  return run("docker", ["compose", "-f", COMPOSE_FILE, ...args], opts);
}

export function composeUp() {
  const r = compose(["up", "-d"], { timeout: 120 * SECOND });
  if (r.status !== 0) throw new Error(`docker compose up -d failed:\n${r.stdout}\n${r.stderr}`);
}

/** Brings the project up, awaits `body()` and takes the project down however it ended. */
export async function whileUp(body) {
  composeUp();
  try {
    return await body();
  } finally {
    composeDown();
  }
}

/** Stops (SIGTERM, `grace` seconds) and removes the project's containers and network. */
export function composeDown(grace = 10, cwd = ROOT) {
  if (!existsSync(join(cwd, COMPOSE_FILE))) return;
  compose(["stop", "-t", String(grace)], { timeout: (grace + 60) * SECOND, cwd });
  // -v: anonymous volumes too (the PostgreSQL data of a replica run).
  compose(["down", "-v", "--remove-orphans", "-t", "1"], { timeout: 120 * SECOND, cwd });
}

/** Fixed container names the generated files use (container_name), replicas included. */
export const FIXED_NAMES = ["server", ...serverNames(MAX_REPLICAS), PG.container];

/**
 * Removes whatever a previous (possibly interrupted) run left in project tp0: the
 * generated project, the mock servers, and stray containers of the project (server,
 * server1..9, postgres, clientN; with their anonymous volumes). A container that holds
 * one of those names outside project tp0 is someone else's: it is left alone, with a
 * warning (`up` will then report the name conflict).
 */
export function cleanUpContainers() {
  composeDown(1);
  run("docker", [
    "compose",
    "-f",
    MOCK_COMPOSE_FILE,
    "--profile",
    "echo",
    "--profile",
    "garble",
    "--profile",
    "mute",
    "down",
    "-t",
    "1",
  ]);
  const stray = run("docker", ["ps", "-aq", "--filter", "label=com.docker.compose.project=tp0"]);
  const ids = stray.stdout.split(/\s+/).filter(Boolean);
  if (ids.length > 0) run("docker", ["rm", "-f", "-v", ...ids]);
  run("docker", ["network", "rm", "tp0_testing_net"]);
  const others = run("docker", [
    "ps",
    "-a",
    "--format",
    '{{.Names}}\t{{.Label "com.docker.compose.project"}}',
  ]);
  const fixed = new Set(FIXED_NAMES);
  for (const row of others.stdout.split("\n")) {
    const [name, project] = row.split("\t");
    if (name && (fixed.has(name) || /^client\d+$/.test(name)) && project !== "tp0") {
      process.stderr.write(
        `e2e: warning: a container named ${name} exists outside project tp0 (project: ${project || "none"}); it is not removed, and compose cannot create its own ${name}\n`,
      );
    }
  }
}

/** Exit code of a container (null while running or when it does not exist). */
export function exitCode(container) {
  const r = run("docker", ["inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", container]);
  if (r.status !== 0) return null;
  const [running, code] = r.stdout.trim().split(" ");
  return running === "true" ? null : Number(code);
}

/** Stops one container with `docker stop -t grace` (SIGTERM, then SIGKILL). */
export function dockerStop(container, grace = 10) {
  return check("docker", ["stop", "-t", String(grace), container], {
    timeout: (grace + 60) * SECOND,
  });
}

// ---------------------------------------------------------------------------------
// Log parsing (the course's line_parser semantics, stricter)

export const RESULTS = new Set(["success", "fail", "in_progress"]);
const EXIT_MARK = " exited with code ";
// biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colour codes
const ANSI = /\u001b\[[0-9;]*m/g;

/**
 * Parses one line of `docker compose logs` output.
 * - `client1    | 2026-… INFO     action: x | result: success | k: v` →
 *   { source: "client1", action: "x", result: "success", fields: { k: "v" }, line }
 * - `client1 exited with code 0` → { source: "client1", action: "exit", code: 0,
 *   result: "success" | "fail", fields: {}, line }
 * - anything else → null.
 * Throws, like the course's parser, on a line with `action:` that it cannot split into
 * `source | action | result | key: value …`, or on an unknown result.
 */
export function parseLine(rawLine) {
  const line = rawLine.replace(ANSI, "").trimEnd();
  if (line.includes("action:")) {
    const parts = line.split("|");
    if (parts.length < 3) throw new Error(`log line without source|action|result: ${line}`);
    const [source, action, result, ...details] = parts;
    const msg = {
      source: source.trim(),
      action: action.split(":").at(-1).trim(),
      result: result.split(":").at(-1).trim(),
      fields: {},
      line,
    };
    if (!RESULTS.has(msg.result)) throw new Error(`unknown result "${msg.result}" in: ${line}`);
    for (const detail of details) {
      // Keys never hold a colon, values may (`server_address: server:12345`), so the key
      // ends at the first colon. (The course's parser splits at the last one; it never
      // reads a value that holds a colon.)
      const colon = detail.indexOf(":");
      if (colon < 0) throw new Error(`detail without a colon ("${detail}") in: ${line}`);
      const key = detail.slice(0, colon).trim();
      if (key === "" || ["source", "action", "result"].includes(key)) {
        throw new Error(`invalid detail name "${key}" in: ${line}`);
      }
      msg.fields[key] = detail.slice(colon + 1).trim();
    }
    return msg;
  }
  const exit = line.lastIndexOf(EXIT_MARK);
  if (exit >= 0) {
    const code = Number(line.slice(exit + EXIT_MARK.length).trim());
    return {
      source: line.slice(0, exit).trim(),
      action: "exit",
      code,
      result: code === 0 ? "success" : "fail",
      fields: {},
      line,
    };
  }
  return null;
}

// ---------------------------------------------------------------------------------
// Following `docker compose logs -f`

/**
 * Follows the project's logs until `done(messages)` returns true after a parsed line,
 * or the hang guard fires. Returns { messages, lines }. Every raw line is also written
 * to results/e2e/<name>.log. Fails on a line the parser rejects.
 *
 * `docker compose logs -f` interleaves containers in no guaranteed order (a client's
 * exit line may come before the server lines written earlier), so `done` should name
 * every line the test needs. `settled(messages)` (e.g. "all clients exited") starts a
 * shorter guard: if `done` is still false `settleMs` later, the messages are returned
 * as they are and the test's assertions say precisely what is missing.
 */
export async function followLogs(
  name,
  done,
  { timeout = RUN_TIMEOUT, settled, settleMs = 30 * SECOND, onMessage, cwd = ROOT } = {},
) {
  const child = spawn("docker", ["compose", "-f", COMPOSE_FILE, "logs", "-f"], {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines = [];
  const messages = [];
  const logFile = join(RESULTS_DIR, `${name.replace(/[^\w.-]+/g, "_")}.log`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const flush = () => writeFileSync(logFile, lines.map((l) => `${l}\n`).join(""));

  let timer;
  const guard = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`hang guard: no end condition after ${timeout / SECOND}s`)),
      timeout,
    );
  });
  const stderr = [];
  child.stderr.on("data", (d) => stderr.push(d.toString()));
  const closed = new Promise((res) => child.on("close", res));

  let settleTimer;
  let settleResolve;
  const settledPromise = new Promise((res) => {
    settleResolve = res;
  });
  const reader = (async () => {
    const rl = createInterface({ input: child.stdout, crlfDelay: Number.POSITIVE_INFINITY });
    for await (const raw of rl) {
      lines.push(raw);
      const msg = parseLine(raw);
      if (!msg) continue;
      messages.push(msg);
      if (onMessage) await onMessage(msg, messages);
      if (done(messages)) return;
      if (settled && !settleTimer && settled(messages)) {
        settleTimer = setTimeout(settleResolve, settleMs);
      }
    }
    throw new Error(
      `\`docker compose logs -f\` ended before the end condition\n${stderr.join("")}`,
    );
  })();
  // The race below may end first (hang guard, settle); the reader then fails when the
  // child is killed, which is expected and must not surface as an unhandled rejection.
  reader.catch(() => {});

  try {
    await Promise.race([reader, guard, settledPromise]);
    return { messages, lines };
  } catch (err) {
    err.message += `\n--- last log lines (full log: ${logFile}) ---\n${lines.slice(-60).join("\n")}`;
    throw err;
  } finally {
    clearTimeout(timer);
    clearTimeout(settleTimer);
    child.kill("SIGTERM");
    await Promise.race([closed, new Promise((r) => setTimeout(r, 5 * SECOND))]);
    if (child.exitCode === null) child.kill("SIGKILL");
    flush();
  }
}

// ---------------------------------------------------------------------------------
// Helpers over parsed messages

export const clientName = (i) => `client${i}`;
export const clientNames = (n) => Array.from({ length: n }, (_, i) => clientName(i + 1));

export function exitsOf(messages) {
  const m = new Map();
  for (const msg of messages) if (msg.action === "exit") m.set(msg.source, msg.code);
  return m;
}

/** True when every named container has an `exited with code` line. */
export function allExited(messages, names) {
  const exits = exitsOf(messages);
  return names.every((n) => exits.has(n));
}

/**
 * followLogs until the named clients have exited and `until(messages)` holds (settled once they
 * have exited: see followLogs), then asserts that no operation failed. Returns followLogs' result.
 */
export async function followClients(name, clients, until, opts = {}) {
  const exited = (m) => allExited(m, clients);
  const run = await followLogs(name, (m) => exited(m) && until(m), { ...opts, settled: exited });
  assert.deepEqual(failures(run.messages), [], show(failures(run.messages)));
  return run;
}

/** Sum of the `cantidad` of the servers' successful apuesta_recibida lines. */
export function betsReceived(messages, servers = ["server"]) {
  return messages
    .filter(
      (m) =>
        servers.includes(m.source) &&
        m.action === Action.APUESTA_RECIBIDA &&
        m.result === "success",
    )
    .reduce((sum, m) => sum + Number(m.fields.cantidad), 0);
}

export function failures(messages) {
  return messages.filter((m) => m.action !== "exit" && m.result === "fail");
}

/** Human-readable list of lines, for assertion messages. */
export function show(messages) {
  return messages.map((m) => m.line).join("\n");
}

/** The records of the server container's bets.csv (the test fails when it cannot be read). */
export function storedBets() {
  const csv = run("docker", ["exec", "server", "cat", "bets.csv"]);
  assert.equal(csv.status, 0, csv.stderr);
  return csvRecords(csv.stdout);
}

/** Number of CSV records in text written by the server (quoted fields may hold newlines). */
export function csvRecords(text) {
  const records = [];
  let field = "";
  let row = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field);
      records.push(row);
      row = [];
      field = "";
    } else field += c;
  }
  if (field !== "" || row.length > 0) {
    row.push(field);
    records.push(row);
  }
  return records;
}

export function readRepoFile(rel) {
  return readFileSync(join(ROOT, rel), "utf8");
}
