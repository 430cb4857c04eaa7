// Runs one whole lottery on this machine: the real server (or several replicas of it sharing a
// PostgreSQL database) and N real agencies as local processes on 127.0.0.1, each agency over its
// own data file. Shared by run-local (interactive) and bench.
//
// Order: one server with the file store gets a socket this process has already bound to a
// loopback port the kernel picked (SERVER_LISTEN_FD=3), and every agency starts at once with it:
// their connections wait in the socket's backlog while the server starts, so nobody waits for
// anybody's start-up (on the course's data the server's start was about a tenth of the run).
// Replicas (and a server waiting for PostgreSQL) are started with SERVER_PORT=0 (the kernel
// picks a free port, which the server logs in `accept_connections | in_progress | port: N`);
// once all of them listen, every agency at once, with CLI_SERVER_ADDRESS listing every replica
// (agency N starts at entry (N-1) mod n and fails over to the next). Agencies are N processes,
// or with `fleet` one load-generator process (`quiniela-agency --agencies 1-N --data DIR`)
// running N agency sessions.
// The run is over when every agency has exited (fleet: when the load generator has); the servers
// are then stopped with SIGTERM. If an agency exits without its winners, or a server exits on its
// own, nothing else can finish (the draw waits for every agency), so the remaining processes are
// stopped at once.
//
// Progress is read from the programs' own log lines (nothing else is instrumented):
//   server  `apuesta_recibida | success | cantidad: N`   (INFO, one per durable batch)
//           `agency_done | success | agency: A`          (DEBUG)   `sorteo | success` (INFO)
//   agency  `apuesta_enviada | in_progress | cantidad: N | first: P`   (DEBUG, one per batch)
//           `consulta_ganadores | success | cant_ganadores: N`          (INFO)
//           `agency | success|fail | ... | bets_stored: N [| invalid_rows: I | rejected_bets: R]`
//   The load generator logs the same lines with `client_id: N` appended (its own lines, `config`
//   and the final `agencias`, have no numeric client_id).

import { mkdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { type LogLine, parseLogLine } from "../../kit/logs.js";
import { bindLoopback } from "../../kit/ports.js";
import { baseEnv, type ExitInfo, ManagedProcess } from "../../kit/proc.js";
import { AGENCY_JS, FLEET_NODE_ARGS, SERVER_JS, SERVER_NODE_ARGS } from "../../kit/programs.js";
import { Sampler } from "../../kit/stats.js";
import type { StorageTarget } from "../../kit/stored.js";
import { Action } from "../../shared/src/actions.js";

export type SyncMode = "fdatasync" | "fsync" | "none";
export type LogLevel = "DEBUG" | "INFO" | "WARNING" | "ERROR";

export { COURSE_BETS } from "../gen-data.js";

export type AgencyPhase = "starting" | "sending" | "waiting_draw" | "done" | "failed";

export interface AgencyLive {
  id: number;
  dataFile: string;
  /** Bets sent so far (first + cantidad of the last batch; DEBUG logs only). */
  sent: number;
  phase: AgencyPhase;
  winners: number | null;
  /** bets_stored of the final `agency` line. */
  stored: number | null;
  invalidRows: number;
  rejectedBets: number;
  /** ms since the run started: the agency's first log line (`config`), i.e. node has booted. */
  upAt: number | null;
  /** ms since the run started. */
  winnersAt: number | null;
  /**
   * How the agency ended. In a load generator (fleet), the agency's own end: status 0 after its
   * `agency | success` line, 3 after `agency | fail` with its data errors, 1 after a fatal
   * `agency | fail`; an agency that never logged its end gets the load generator's exit.
   */
  exit: ExitInfo | null;
  /** Its own process; in a fleet, the load generator (shared by every agency). */
  proc: ManagedProcess | null;
}

export interface ServerLive {
  /** "server", or "replica N" when there are several. */
  name: string;
  port: number | null;
  /** Bets the server acknowledged as durable (sum of apuesta_recibida cantidad). */
  stored: number;
  agenciesDone: number;
  readyAt: number | null;
  lastDoneAt: number | null;
  /** Peak RSS (kB) sampled when the last agency_done was seen: the ingest's peak, before the draw. */
  peakRssBeforeDrawKb: number | null;
  drawAt: number | null;
  /** `sorteo | success` lines it logged (exactly one across all replicas in a good run). */
  draws: number;
  exit: ExitInfo | null;
  proc: ManagedProcess | null;
}

export interface LotteryOptions {
  /** Working directory of every process; bets.csv (and logs/) go here. */
  runDir: string;
  /** dataFiles[i] is agency i+1's file (with `fleet`: DIR/agency-{i+1}.csv, one DIR). */
  dataFiles: readonly string[];
  sync: SyncMode;
  /** Server processes (default 1); more than one need `databaseUrl` (they share it). */
  replicas?: number;
  /** DATABASE_URL of every server: the PostgreSQL store. Unset: the file store, runDir/bets.csv. */
  databaseUrl?: string;
  /** Drive every agency from one load-generator process instead of one process each. */
  fleet?: boolean;
  /** The load generator's --concurrency (agencies streaming at once; its default when unset). */
  fleetConcurrency?: number;
  /** CLI_BATCH_WINDOW; the agency's default when undefined. */
  window?: number;
  /** CLI_BATCH_MAXAMOUNT; the agency's default when undefined. */
  maxAmount?: number;
  serverLogLevel: LogLevel;
  agencyLogLevel: LogLevel;
  /** Whole run limit, ms (the processes are stopped when it is reached). */
  timeoutMs: number;
  /** /proc sampling period, ms. */
  sampleMs: number;
  /** Copy each process's output to runDir/logs/{server,agency-N}.log. */
  keepLogs: boolean;
  /** Extra node flags (e.g. --cpu-prof) for the server and for given agencies. */
  serverNodeArgs?: readonly string[];
  /** Per agency; with `fleet`, the load generator gets agency 1's. */
  agencyNodeArgs?: (id: number) => readonly string[];
  /** Extra environment for the server / every agency (experiments: MALLOC_ARENA_MAX, ...). */
  serverEnv?: Readonly<Record<string, string>>;
  agencyEnv?: Readonly<Record<string, string>>;
  /** Aborting stops every process (SIGINT of the caller). */
  signal?: AbortSignal;
  /** Called on notable moments (for plain progress output). */
  onEvent?: (e: LotteryEvent) => void;
}

export type LotteryEvent =
  | {
      kind: "server_ready";
      port: number;
      pid: number;
      /** 1-based; `replicas` servers in all. */
      replica: number;
      replicas: number;
      at: number;
    }
  | { kind: "agencies_started"; pids: number[]; fleet: boolean; at: number }
  | { kind: "agency_exit"; agency: AgencyLive; fleet: boolean; at: number }
  | { kind: "fleet_exit"; exit: ExitInfo; pid: number; at: number }
  | { kind: "draw"; replica: number; at: number }
  | { kind: "stopping"; reason: string; at: number };

export interface LotteryResult {
  /** The server, or with several replicas their sum (stored, DONEs, draws; proc: replica 1's). */
  server: ServerLive;
  /** Every server process (one entry when there is one server). */
  servers: ServerLive[];
  agencies: AgencyLive[];
  /** The agency processes: one per agency, or the one load generator. */
  agencyProcs: ManagedProcess[];
  /** ms since the start (server spawn). */
  times: {
    serverReady: number | null;
    agenciesStarted: number | null;
    lastWinners: number | null;
    allExited: number;
    end: number;
  };
  /** Why the run was cut short, or null. */
  failure: string | null;
  interrupted: boolean;
  storagePath: string;
  storage: StorageTarget;
}

/**
 * Settings of the throwaway PostgreSQL cluster that run-local and bench start, beyond
 * pg-cluster's own (127.0.0.1 only; fsync and synchronous_commit on: durable commits).
 */
export const THROWAWAY_PG_SETTINGS: Readonly<Record<string, string | number>> = {};

function newServer(name: string): ServerLive {
  return {
    name,
    port: null,
    stored: 0,
    agenciesDone: 0,
    readyAt: null,
    lastDoneAt: null,
    peakRssBeforeDrawKb: null,
    drawAt: null,
    draws: 0,
    exit: null,
    proc: null,
  };
}

/** The directory holding every agency-{i}.csv of `files` (i = position + 1), or null. */
export function fleetDataDir(files: readonly string[]): string | null {
  if (files.length === 0) return null;
  const dir = dirname(resolve(files[0]!));
  const ok = files.every((f, i) => resolve(f) === join(dir, `agency-${i + 1}.csv`));
  return ok ? dir : null;
}

/** Live view of a running lottery (read it from a timer to draw progress). */
export class LotteryRun {
  /** Every server process; `server` is their total (the same object when there is one). */
  readonly servers: ServerLive[];
  readonly server: ServerLive;
  readonly agencies: AgencyLive[];
  readonly agencyProcs: ManagedProcess[] = [];
  readonly t0 = performance.now();
  private failure: string | null = null;
  private interrupted = false;
  /** ms since the run started, when the agencies were started; null until then. */
  private agenciesStartedAt: number | null = null;
  private wake: (() => void) | null = null;
  /** Agency processes started whose exit (and last output line) was not seen yet. */
  private agencyProcsRunning = 0;

  constructor(private readonly o: LotteryOptions) {
    const n = o.replicas ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`replicas must be ≥ 1, got ${n}`);
    if (n > 1 && o.databaseUrl === undefined) {
      throw new RangeError("several replicas share a database: set databaseUrl");
    }
    if (o.fleet && fleetDataDir(o.dataFiles) === null) {
      throw new RangeError("a load generator reads DIR/agency-1.csv .. agency-N.csv of one DIR");
    }
    this.servers =
      n === 1
        ? [newServer("server")]
        : Array.from({ length: n }, (_, i) => newServer(`replica ${i + 1}`));
    this.server = n === 1 ? this.servers[0]! : newServer("servers");
    this.agencies = o.dataFiles.map((dataFile, i) => ({
      id: i + 1,
      dataFile,
      sent: 0,
      phase: "starting",
      winners: null,
      stored: null,
      invalidRows: 0,
      rejectedBets: 0,
      upAt: null,
      winnersAt: null,
      exit: null,
      proc: null,
    }));
  }

  get storagePath(): string {
    return join(this.o.runDir, "bets.csv");
  }

  get storage(): StorageTarget {
    return this.o.databaseUrl === undefined
      ? { kind: "file", path: this.storagePath }
      : { kind: "postgres", url: this.o.databaseUrl };
  }

  elapsed(at = performance.now()): number {
    return at - this.t0;
  }

  private event(e: LotteryEvent): void {
    this.o.onEvent?.(e);
  }

  private fail(reason: string): void {
    this.failure ??= reason;
    this.wake?.();
  }

  private logPath(name: string): string | undefined {
    return this.o.keepLogs ? join(this.o.runDir, "logs", `${name}.log`) : undefined;
  }

  /** Every agency has ended (and with a load generator, that process has exited too). */
  private allAgenciesExited(): boolean {
    return this.agencyProcsRunning === 0 && this.agencies.every((a) => a.exit !== null);
  }

  async run(): Promise<LotteryResult> {
    const o = this.o;
    if (o.keepLogs) await mkdir(join(o.runDir, "logs"), { recursive: true });
    const sampler = new Sampler(o.sampleMs);
    const onAbort = () => {
      this.interrupted = true;
      this.fail("interrupted");
    };
    o.signal?.addEventListener("abort", onAbort, { once: true });
    const deadline = setTimeout(
      () => this.fail(`timeout after ${o.timeoutMs / 1000} s`),
      o.timeoutMs,
    );
    const procs: ManagedProcess[] = [];
    const agencyCount = o.dataFiles.length;
    try {
      if (o.signal?.aborted) onAbort();
      // ---- servers
      const serverEnv: Record<string, string> = {
        ...baseEnv(),
        SERVER_PORT: "0",
        SERVER_IP: "127.0.0.1",
        SERVER_LISTEN_BACKLOG: String(Math.max(128, 2 * agencyCount)),
        AGENCIES: String(agencyCount),
        STORAGE_FILEPATH: this.storagePath,
        STORAGE_SYNC: o.sync,
        LOGGING_LEVEL: o.serverLogLevel,
      };
      // room for every agency's connection plus reconnections (the server's default is 1024)
      if (2 * agencyCount > 1024) serverEnv.MAX_CONNECTIONS = String(2 * agencyCount);
      if (o.databaseUrl !== undefined) serverEnv.DATABASE_URL = o.databaseUrl;
      const bound =
        this.servers.length === 1 && o.databaseUrl === undefined
          ? await bindLoopback(Number(serverEnv.SERVER_LISTEN_BACKLOG))
          : null;
      if (bound !== null) {
        serverEnv.SERVER_LISTEN_FD = "3";
        serverEnv.SERVER_PORT = String(bound.port);
      }
      this.servers.forEach((s, i) => {
        const logName = this.servers.length === 1 ? "server" : `server-${i + 1}`;
        const p = new ManagedProcess({
          name: s.name,
          command: process.execPath,
          args: [...SERVER_NODE_ARGS, ...(o.serverNodeArgs ?? []), SERVER_JS],
          cwd: o.runDir,
          env: { ...serverEnv, ...o.serverEnv },
          onLine: (line, _s, at) => this.onServerLine(s, line, at),
          logPath: this.logPath(logName),
          passFds: bound !== null ? [bound.fd] : [],
        });
        s.proc = p;
        if (this.server !== s) this.server.proc ??= p;
        procs.push(p);
        sampler.add(p);
        void p.exited.then((e) => {
          s.exit = e;
          if (this.server !== s && (this.server.exit === null || e.code !== 0 || e.signal)) {
            this.server.exit = e;
          }
          if (s.port === null) this.fail(`the ${s.name} exited before listening (${exitText(e)})`);
          else if (!this.allAgenciesExited()) {
            this.fail(`the ${s.name} exited while agencies were running (${exitText(e)})`);
          }
          this.wake?.();
        });
      });
      bound?.close(); // the server has its own copy
      sampler.start();
      // with the socket bound here, the agencies start now; otherwise once every server listens
      if (bound !== null) this.startAllAgencies(`127.0.0.1:${bound.port}`, procs, sampler);
      await this.until(() => this.servers.every((s) => s.port !== null) || this.failure !== null);
      if (this.failure === null) {
        this.server.readyAt = Math.max(...this.servers.map((s) => s.readyAt ?? 0));
        if (this.server !== this.servers[0]) this.server.port = this.servers[0]!.port;
        const byReadiness = [...this.servers].sort((a, b) => (a.readyAt ?? 0) - (b.readyAt ?? 0));
        for (const s of byReadiness) {
          const i = this.servers.indexOf(s);
          this.event({
            kind: "server_ready",
            port: s.port!,
            pid: s.proc!.pid,
            replica: i + 1,
            replicas: this.servers.length,
            at: s.readyAt ?? this.elapsed(),
          });
        }
        if (bound === null) {
          const address = this.servers.map((s) => `127.0.0.1:${s.port}`).join(",");
          this.startAllAgencies(address, procs, sampler);
        }
        await this.until(() => this.failure !== null || this.allAgenciesExited());
      }
      const allExited = this.elapsed();
      if (this.failure !== null)
        this.event({ kind: "stopping", reason: this.failure, at: allExited });
      // ---- stop whatever still runs (the servers always; agencies only after a failure)
      sampler.sampleAll();
      await Promise.all(procs.map((p) => p.stop(10_000)));
      for (const s of this.servers) s.exit = s.proc?.exit ?? s.exit;
      return {
        server: this.server,
        servers: this.servers,
        agencies: this.agencies,
        agencyProcs: this.agencyProcs,
        times: {
          serverReady: this.server.readyAt,
          agenciesStarted: this.agenciesStartedAt,
          lastWinners: this.agencies.every((a) => a.winnersAt !== null)
            ? Math.max(...this.agencies.map((a) => a.winnersAt ?? 0))
            : null,
          allExited,
          end: this.elapsed(),
        },
        failure: this.failure,
        interrupted: this.interrupted,
        storagePath: this.storagePath,
        storage: this.storage,
      };
    } finally {
      clearTimeout(deadline);
      sampler.stop();
      o.signal?.removeEventListener("abort", onAbort);
      // never leave a child behind, whatever happened above
      await Promise.all(procs.map((p) => p.stop(2_000)));
    }
  }

  private agencyEnv(address: string): Record<string, string> {
    const o = this.o;
    const env: Record<string, string> = {
      ...baseEnv(),
      CLI_SERVER_ADDRESS: address,
      CLI_LOG_LEVEL: o.agencyLogLevel,
      CLI_MODE: "batch",
      ...o.agencyEnv,
    };
    if (o.window !== undefined) env.CLI_BATCH_WINDOW = String(o.window);
    if (o.maxAmount !== undefined) env.CLI_BATCH_MAXAMOUNT = String(o.maxAmount);
    return env;
  }

  /** Starts the agencies (processes or one load generator) against `address`. */
  private startAllAgencies(address: string, procs: ManagedProcess[], sampler: Sampler): void {
    if (this.o.fleet) this.startFleet(address, procs, sampler);
    else this.startAgencies(address, procs, sampler);
    this.agenciesStartedAt = this.elapsed();
    this.event({
      kind: "agencies_started",
      pids: this.agencyProcs.map((p) => p.pid),
      fleet: this.o.fleet === true,
      at: this.agenciesStartedAt,
    });
  }

  /** One process per agency. */
  private startAgencies(address: string, procs: ManagedProcess[], sampler: Sampler): void {
    const o = this.o;
    const common = this.agencyEnv(address);
    for (const a of this.agencies) {
      const env: Record<string, string> = {
        ...common,
        CLI_ID: String(a.id),
        CLI_DATA_FILE: resolve(a.dataFile),
      };
      const p = new ManagedProcess({
        name: `agency ${a.id}`,
        command: process.execPath,
        args: [...(o.agencyNodeArgs?.(a.id) ?? []), AGENCY_JS],
        cwd: o.runDir,
        env,
        onLine: (line, _s, at) => this.onAgencyLine(a, line, at),
        logPath: this.logPath(`agency-${a.id}`),
      });
      a.proc = p;
      this.trackAgencyProc(p, procs, sampler, (e) => this.finishAgency(a, e, false));
    }
  }

  /** Follows an agency process (one agency's, or the load generator) until it exits. */
  private trackAgencyProc(
    p: ManagedProcess,
    procs: ManagedProcess[],
    sampler: Sampler,
    onExit: (e: ExitInfo) => void,
  ): void {
    procs.push(p);
    this.agencyProcs.push(p);
    this.agencyProcsRunning++;
    sampler.add(p);
    void p.exited.then((e) => {
      this.agencyProcsRunning--;
      onExit(e);
      this.wake?.();
    });
  }

  /** One load-generator process running every agency's session. */
  private startFleet(address: string, procs: ManagedProcess[], sampler: Sampler): void {
    const o = this.o;
    const n = this.agencies.length;
    const args = ["--agencies", `1-${n}`, "--data", fleetDataDir(o.dataFiles)!];
    if (o.fleetConcurrency !== undefined) args.push("--concurrency", String(o.fleetConcurrency));
    const p = new ManagedProcess({
      name: "load generator",
      command: process.execPath,
      args: [...FLEET_NODE_ARGS, ...(o.agencyNodeArgs?.(1) ?? []), AGENCY_JS, ...args],
      cwd: o.runDir,
      env: this.agencyEnv(address),
      onLine: (line, _s, at) => this.onFleetLine(line, at),
      logPath: this.logPath("agencies"),
    });
    for (const a of this.agencies) a.proc = p;
    this.trackAgencyProc(p, procs, sampler, (e) => {
      this.event({ kind: "fleet_exit", exit: e, pid: p.pid, at: this.elapsed(e.at) });
      // an agency that did not log its end ends with the process (and without its winners)
      for (const a of this.agencies) if (a.exit === null) this.finishAgency(a, e, true);
      if (e.code !== 0 && e.code !== 3 && this.failure === null) {
        this.fail(`the load generator ended with ${exitText(e)}`);
      }
    });
  }

  private finishAgency(a: AgencyLive, e: ExitInfo, fleet: boolean): void {
    if (a.exit !== null) return;
    a.exit = e;
    const ok = (e.code === 0 || e.code === 3) && a.winners !== null;
    a.phase = ok ? "done" : "failed";
    this.event({ kind: "agency_exit", agency: a, fleet, at: this.elapsed(e.at) });
    if (!ok) this.fail(`agency ${a.id} ended without its winners (${exitText(e)})`);
  }

  /** Resolves when `cond` holds, re-checked whenever something happened. */
  private async until(cond: () => boolean): Promise<void> {
    while (!cond()) {
      await new Promise<void>((r) => {
        this.wake = r;
      });
      this.wake = null;
    }
  }

  private onServerLine(s: ServerLive, line: string, at: number): void {
    const m = parseLogLine(line);
    if (m === null) return;
    const total = this.server;
    const many = total !== s;
    switch (m.action) {
      case Action.APUESTA_RECIBIDA:
        if (m.result === "success") {
          const n = num(m.fields.cantidad);
          s.stored += n;
          if (many) total.stored += n;
        }
        break;
      case Action.ACCEPT_CONNECTIONS:
        if (m.result === "in_progress" && s.port === null && m.fields.port !== undefined) {
          s.port = num(m.fields.port);
          s.readyAt = this.elapsed(at);
          this.wake?.();
        }
        break;
      case Action.AGENCY_DONE:
        if (m.result === "success") {
          const t = this.elapsed(at);
          s.agenciesDone++;
          s.lastDoneAt = t;
          if (many) {
            total.agenciesDone++;
            total.lastDoneAt = t;
          }
          // every server's peak so far: after the last DONE, the ingest's peak of each
          for (const r of this.servers) {
            if (!r.proc) continue;
            r.proc.sample();
            r.peakRssBeforeDrawKb = r.proc.stats.peakRssKb;
          }
          if (many) {
            total.peakRssBeforeDrawKb = Math.max(
              ...this.servers.map((r) => r.peakRssBeforeDrawKb ?? 0),
            );
          }
        }
        break;
      case Action.SORTEO:
        if (m.result === "success") {
          s.draws++;
          s.drawAt ??= this.elapsed(at);
          if (many) {
            total.draws++;
            total.drawAt ??= s.drawAt;
          }
          this.event({ kind: "draw", replica: this.servers.indexOf(s) + 1, at: s.drawAt });
        }
        break;
    }
  }

  /** A load generator's line: an agency's (it carries `client_id: N`) or its own. */
  private onFleetLine(line: string, at: number): void {
    const m = parseLogLine(line);
    if (m === null) return;
    const t = this.elapsed(at);
    for (const a of this.agencies) a.upAt ??= t;
    const id = Number(m.fields.client_id);
    const a = Number.isInteger(id) ? this.agencies[id - 1] : undefined;
    if (a === undefined) return;
    this.agencyLine(a, m, at);
    if (m.action === Action.AGENCY && a.exit === null) {
      // its session is over: 0, 3 (data errors, bets_stored given) or 1 (a fatal error)
      const code = m.result === "success" ? 0 : m.fields.bets_stored !== undefined ? 3 : 1;
      this.finishAgency(a, { code, signal: null, at }, true);
      this.wake?.();
    }
  }

  private onAgencyLine(a: AgencyLive, line: string, at: number): void {
    const m = parseLogLine(line);
    if (m === null) return;
    this.agencyLine(a, m, at);
  }

  private agencyLine(a: AgencyLive, m: LogLine, at: number): void {
    a.upAt ??= this.elapsed(at);
    switch (m.action) {
      case Action.APUESTA_ENVIADA:
        if (m.result === "in_progress") {
          a.phase = "sending";
          a.sent = Math.max(a.sent, num(m.fields.first) + num(m.fields.cantidad));
        }
        break;
      case Action.CONNECT:
        if (m.result === "success" && a.phase === "starting") a.phase = "sending";
        break;
      case Action.NOTIFICAR_FIN:
        if (m.result === "success") {
          a.phase = "waiting_draw";
          a.sent = Math.max(a.sent, num(m.fields.apuestas));
        }
        break;
      case Action.LEER_APUESTA:
        if (m.result === "fail") a.invalidRows++;
        break;
      case Action.CONSULTA_GANADORES:
        if (m.result === "success") {
          a.winners = num(m.fields.cant_ganadores);
          a.winnersAt = this.elapsed(at);
        }
        break;
      case Action.AGENCY:
        if (m.fields.bets_stored !== undefined) {
          a.stored = num(m.fields.bets_stored);
          a.sent = Math.max(a.sent, a.stored);
          if (m.fields.invalid_rows !== undefined) a.invalidRows = num(m.fields.invalid_rows);
          if (m.fields.rejected_bets !== undefined) a.rejectedBets = num(m.fields.rejected_bets);
        }
        break;
    }
  }
}

export function exitText(e: ExitInfo): string {
  if (e.signal) return `killed by ${e.signal}`;
  return e.code === null ? "did not start" : `exit status ${e.code}`;
}

function num(v: string | undefined): number {
  const n = Number(v);
  return Number.isFinite(n) ? n : 0;
}
