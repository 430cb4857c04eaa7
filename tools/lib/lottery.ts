// Runs one whole lottery on this machine: the real server and N real agencies as local processes
// on 127.0.0.1, each over its own data file. Shared by run-local (interactive) and bench.
//
// Order: the server is started with SERVER_PORT=0 (the kernel picks a free port, which the server
// logs in `accept_connections | in_progress | port: N`), then every agency at once. The run is
// over when every agency has exited; the server is then stopped with SIGTERM. If an agency exits
// without its winners, or the server exits on its own, nothing else can finish (the draw waits
// for every agency), so the remaining processes are stopped at once.
//
// Progress is read from the programs' own log lines (nothing else is instrumented):
//   server  `apuesta_recibida | success | cantidad: N`   (INFO, one per durable batch)
//           `agency_done | success | agency: A`          (DEBUG)   `sorteo | success` (INFO)
//   agency  `apuesta_enviada | in_progress | cantidad: N | first: P`   (DEBUG, one per batch)
//           `consulta_ganadores | success | cant_ganadores: N`          (INFO)
//           `agency | success|fail | ... | bets_stored: N [| invalid_rows: I | rejected_bets: R]`

import { createReadStream, existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { CsvReader } from "../../shared/src/csv.js";
import { baseEnv, type ExitInfo, ManagedProcess, Sampler } from "./proc.js";

export type SyncMode = "fdatasync" | "fsync" | "none";
export type LogLevel = "DEBUG" | "INFO" | "WARNING" | "ERROR";

export const WINNING_NUMBER = 7574;
export { COURSE_BETS } from "../gen-data.js";

const here = dirname(fileURLToPath(import.meta.url));
/** The compiled programs (this file is dist/tools/lib/lottery.js). */
export const SERVER_MAIN = resolve(here, "../../bin/quiniela-server.js");
/** As in the server's Dockerfile and bin: a small young generation keeps its memory flat. */
export const SERVER_NODE_ARGS = ["--max-semi-space-size=2"];
export const AGENCY_MAIN = resolve(here, "../../bin/quiniela-agency.js");

export function checkBuilt(): string | null {
  for (const p of [SERVER_MAIN, AGENCY_MAIN]) {
    if (!existsSync(p)) return `${p} is missing: run \`npm run build\` first`;
  }
  return null;
}

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
  exit: ExitInfo | null;
  proc: ManagedProcess | null;
}

export interface ServerLive {
  port: number | null;
  /** Bets the server acknowledged as durable (sum of apuesta_recibida cantidad). */
  stored: number;
  agenciesDone: number;
  readyAt: number | null;
  lastDoneAt: number | null;
  /** Peak RSS (kB) sampled when the last agency_done was seen: the ingest's peak, before the draw. */
  peakRssBeforeDrawKb: number | null;
  drawAt: number | null;
  exit: ExitInfo | null;
  proc: ManagedProcess | null;
}

export interface LotteryOptions {
  /** Working directory of every process; bets.csv (and logs/) go here. */
  runDir: string;
  /** dataFiles[i] is agency i+1's file. */
  dataFiles: readonly string[];
  sync: SyncMode;
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
  | { kind: "server_ready"; port: number; pid: number; at: number }
  | { kind: "agencies_started"; pids: number[]; at: number }
  | { kind: "agency_exit"; agency: AgencyLive; at: number }
  | { kind: "draw"; at: number }
  | { kind: "stopping"; reason: string; at: number };

export interface LotteryResult {
  server: ServerLive;
  agencies: AgencyLive[];
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
}

/** Live view of a running lottery (read it from a timer to draw progress). */
export class LotteryRun {
  readonly server: ServerLive = {
    port: null,
    stored: 0,
    agenciesDone: 0,
    readyAt: null,
    lastDoneAt: null,
    peakRssBeforeDrawKb: null,
    drawAt: null,
    exit: null,
    proc: null,
  };
  readonly agencies: AgencyLive[];
  readonly t0 = performance.now();
  private failure: string | null = null;
  private interrupted = false;
  private wake: (() => void) | null = null;

  constructor(private readonly o: LotteryOptions) {
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
    let agenciesStarted: number | null = null;
    const procs: ManagedProcess[] = [];
    try {
      if (o.signal?.aborted) onAbort();
      // ---- server
      const server = new ManagedProcess({
        name: "server",
        command: process.execPath,
        args: [...SERVER_NODE_ARGS, ...(o.serverNodeArgs ?? []), SERVER_MAIN],
        cwd: o.runDir,
        env: {
          ...baseEnv(),
          SERVER_PORT: "0",
          SERVER_IP: "127.0.0.1",
          SERVER_LISTEN_BACKLOG: String(Math.max(128, 2 * o.dataFiles.length)),
          AGENCIES: String(o.dataFiles.length),
          STORAGE_FILEPATH: this.storagePath,
          STORAGE_SYNC: o.sync,
          LOGGING_LEVEL: o.serverLogLevel,
          ...o.serverEnv,
        },
        onLine: (line, _s, at) => this.onServerLine(line, at),
        logPath: this.logPath("server"),
      });
      this.server.proc = server;
      procs.push(server);
      sampler.add(server);
      sampler.start();
      void server.exited.then((e) => {
        this.server.exit = e;
        if (this.server.port === null)
          this.fail(`the server exited before listening (${exitText(e)})`);
        else if (!this.agencies.every((a) => a.exit !== null)) {
          this.fail(`the server exited while agencies were running (${exitText(e)})`);
        }
        this.wake?.();
      });
      await this.until(() => this.server.port !== null || this.failure !== null);
      if (this.failure === null && this.server.port !== null) {
        this.event({
          kind: "server_ready",
          port: this.server.port,
          pid: server.pid,
          at: this.elapsed(),
        });
        // ---- agencies
        for (const a of this.agencies) {
          const env: Record<string, string> = {
            ...baseEnv(),
            CLI_ID: String(a.id),
            CLI_SERVER_ADDRESS: `127.0.0.1:${this.server.port}`,
            CLI_DATA_FILE: resolve(a.dataFile),
            CLI_LOG_LEVEL: o.agencyLogLevel,
            CLI_MODE: "batch",
            ...o.agencyEnv,
          };
          if (o.window !== undefined) env.CLI_BATCH_WINDOW = String(o.window);
          if (o.maxAmount !== undefined) env.CLI_BATCH_MAXAMOUNT = String(o.maxAmount);
          const p = new ManagedProcess({
            name: `agency ${a.id}`,
            command: process.execPath,
            args: [...(o.agencyNodeArgs?.(a.id) ?? []), AGENCY_MAIN],
            cwd: o.runDir,
            env,
            onLine: (line, _s, at) => this.onAgencyLine(a, line, at),
            logPath: this.logPath(`agency-${a.id}`),
          });
          a.proc = p;
          procs.push(p);
          sampler.add(p);
          void p.exited.then((e) => {
            a.exit = e;
            const ok = (e.code === 0 || e.code === 3) && a.winners !== null;
            a.phase = ok ? "done" : "failed";
            this.event({ kind: "agency_exit", agency: a, at: this.elapsed(e.at) });
            if (!ok) this.fail(`agency ${a.id} ended without its winners (${exitText(e)})`);
            this.wake?.();
          });
        }
        agenciesStarted = this.elapsed();
        this.event({
          kind: "agencies_started",
          pids: this.agencies.map((a) => a.proc?.pid ?? -1),
          at: agenciesStarted,
        });
        await this.until(
          () => this.failure !== null || this.agencies.every((a) => a.exit !== null),
        );
      }
      const allExited = this.elapsed();
      if (this.failure !== null)
        this.event({ kind: "stopping", reason: this.failure, at: allExited });
      // ---- stop whatever still runs (the server always; agencies only after a failure)
      sampler.sampleAll();
      await Promise.all(procs.map((p) => p.stop(10_000)));
      this.server.exit = server.exit;
      return {
        server: this.server,
        agencies: this.agencies,
        times: {
          serverReady: this.server.readyAt,
          agenciesStarted,
          lastWinners: this.agencies.every((a) => a.winnersAt !== null)
            ? Math.max(...this.agencies.map((a) => a.winnersAt ?? 0))
            : null,
          allExited,
          end: this.elapsed(),
        },
        failure: this.failure,
        interrupted: this.interrupted,
        storagePath: this.storagePath,
      };
    } finally {
      clearTimeout(deadline);
      sampler.stop();
      o.signal?.removeEventListener("abort", onAbort);
      // never leave a child behind, whatever happened above
      await Promise.all(procs.map((p) => p.stop(2_000)));
    }
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

  private onServerLine(line: string, at: number): void {
    const m = parseLogLine(line);
    if (m === null) return;
    const s = this.server;
    switch (m.action) {
      case "apuesta_recibida":
        if (m.result === "success") s.stored += num(m.fields.cantidad);
        break;
      case "accept_connections":
        if (m.result === "in_progress" && s.port === null && m.fields.port !== undefined) {
          s.port = num(m.fields.port);
          s.readyAt = this.elapsed(at);
          this.wake?.();
        }
        break;
      case "agency_done":
        if (m.result === "success") {
          s.agenciesDone++;
          s.lastDoneAt = this.elapsed(at);
          if (s.proc) {
            s.proc.sample();
            s.peakRssBeforeDrawKb = s.proc.stats.peakRssKb;
          }
        }
        break;
      case "sorteo":
        if (m.result === "success") {
          s.drawAt = this.elapsed(at);
          this.event({ kind: "draw", at: s.drawAt });
        }
        break;
    }
  }

  private onAgencyLine(a: AgencyLive, line: string, at: number): void {
    const m = parseLogLine(line);
    if (m === null) return;
    a.upAt ??= this.elapsed(at);
    switch (m.action) {
      case "apuesta_enviada":
        if (m.result === "in_progress") {
          a.phase = "sending";
          a.sent = Math.max(a.sent, num(m.fields.first) + num(m.fields.cantidad));
        }
        break;
      case "connect":
        if (m.result === "success" && a.phase === "starting") a.phase = "sending";
        break;
      case "notificar_fin":
        if (m.result === "success") {
          a.phase = "waiting_draw";
          a.sent = Math.max(a.sent, num(m.fields.apuestas));
        }
        break;
      case "leer_apuesta":
        if (m.result === "fail") a.invalidRows++;
        break;
      case "consulta_ganadores":
        if (m.result === "success") {
          a.winners = num(m.fields.cant_ganadores);
          a.winnersAt = this.elapsed(at);
        }
        break;
      case "agency":
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

export interface LogLine {
  level: string;
  action: string;
  result: string;
  fields: Record<string, string>;
}

const LINE_RE = /^\S+ \S+ (\w+)\s+action: ([^|]*?) \| result: (\w+)(.*)$/;

/** Parses a course-format log line: `date time LEVEL action: a | result: r | k: v | ...`. */
export function parseLogLine(line: string): LogLine | null {
  const m = LINE_RE.exec(line);
  if (m === null) return null;
  const fields: Record<string, string> = {};
  const rest = m[4]!;
  if (rest !== "") {
    for (const part of rest.split(" | ")) {
      const c = part.indexOf(": ");
      if (c > 0) fields[part.slice(0, c).replace(/^\s*\|?\s*/, "")] = part.slice(c + 2);
    }
  }
  return { level: m[1]!, action: m[2]!, result: m[3]!, fields };
}

export interface StoredCounts {
  rows: number;
  /** agency -> rows and winners found in the bets file. */
  perAgency: Map<number, { rows: number; winners: number }>;
  /** Rows that were not 6 fields with a numeric agency (should be none). */
  bad: number;
}

/** Counts the rows and winners per agency in the server's bets.csv (streamed). */
export async function countStoredBets(path: string): Promise<StoredCounts> {
  const out: StoredCounts = { rows: 0, perAgency: new Map(), bad: 0 };
  if (!existsSync(path)) return out;
  const reader = new CsvReader();
  const digits = (buf: Uint8Array, s: number, e: number): number => {
    if (e <= s || e - s > 9) return -1;
    let n = 0;
    for (let i = s; i < e; i++) {
      const d = buf[i]! - 0x30;
      if (d < 0 || d > 9) return -1;
      n = n * 10 + d;
    }
    return n;
  };
  const take = (rec: NonNullable<ReturnType<CsvReader["next"]>>) => {
    const agency = rec.fieldCount === 6 ? digits(rec.bufs[0]!, rec.starts[0]!, rec.ends[0]!) : -1;
    if (agency < 0) {
      out.bad++;
      return;
    }
    const number = digits(rec.bufs[5]!, rec.starts[5]!, rec.ends[5]!);
    let c = out.perAgency.get(agency);
    if (!c) {
      c = { rows: 0, winners: 0 };
      out.perAgency.set(agency, c);
    }
    c.rows++;
    if (number === WINNING_NUMBER) c.winners++;
    out.rows++;
  };
  for await (const chunk of createReadStream(path, {
    highWaterMark: 1 << 20,
  }) as AsyncIterable<Buffer>) {
    reader.feed(chunk);
    for (let rec = reader.next(); rec; rec = reader.next()) take(rec);
  }
  const last = reader.end();
  if (last) take(last);
  return out;
}

/** Counts the lines of a file (an estimate of its rows, for progress bars). */
export async function countLines(path: string): Promise<number> {
  let lines = 0;
  let lastByte = 0x0a;
  let bytes = 0;
  for await (const chunk of createReadStream(path, {
    highWaterMark: 1 << 20,
  }) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) lines++;
    if (chunk.length > 0) lastByte = chunk[chunk.length - 1]!;
    bytes += chunk.length;
  }
  return bytes > 0 && lastByte !== 0x0a ? lines + 1 : lines;
}
