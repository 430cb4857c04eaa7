#!/usr/bin/env node
/**
 * run-local: the whole lottery on this machine in one command, without Docker.
 *
 *   npm run lottery [-- options]          (build, then node dist/tools/run-local.js)
 *
 * Starts the real server and N real agencies as local processes on 127.0.0.1 (the server picks
 * a free port), over the course's own files in `.data/agency-{N}.csv` (unzipped from the
 * repository's `.data/dataset.zip` when missing) or over generated data (--generate, or any
 * generator option; shaped by default like the course's 5 agencies of 26,936, 25,518, 16,014,
 * 9,238 and 991 bets with 2, 3, 3, 2 and 0 winners). Shows per-agency progress (bars redrawn in
 * place on a terminal, periodic plain lines otherwise), then a summary: bets sent, winners and
 * exit status per agency, totals, time and bets/s, and a cross-check of the server's bets.csv
 * against what the agencies report and against the bets and winners the files hold.
 *
 * With --replicas N the bets go to PostgreSQL instead of bets.csv: a throwaway PostgreSQL 15
 * cluster is started in the run directory (initdb + pg_ctl; stopped at the end, whatever
 * happens) or --database URL names an existing one, N server replicas share it, and every agency
 * knows all of them (agency i starts at replica (i-1) mod N and fails over to the next). With
 * --fleet one load-generator process runs every agency's session (for hundreds of agencies).
 *
 * Every process runs with its working directory in a fresh temporary run directory and gets its
 * whole configuration from the environment, so the repository's config files are not used.
 * Ctrl-C stops the processes it started (SIGTERM, then SIGKILL after 10 s) and exits 130.
 *
 * Exit status: 0 all agencies got their winners and every number agrees; 1 a process failed or
 * the numbers disagree (the run directory is kept for inspection); 2 usage error; 130 interrupted.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { type PgCluster, pgClusterUnavailable, startPgCluster } from "../kit/pg-cluster.js";
import type { ExitInfo, ManagedProcess } from "../kit/proc.js";
import { checkBuilt } from "../kit/programs.js";
import { countAgencyFile, countStored, type StoredCounts } from "../kit/stored.js";
import { makeCerts, mutualTlsEnv } from "./certs.js";
import {
  COURSE_BETS,
  courseBets,
  DATASET_FLAGS,
  type DatasetResult,
  DEFAULT_WINNERS_PATTERN,
  generateDataset,
  planDataset,
} from "./gen-data.js";
import { isMain, parseOptions, stopWhenOutputGone, UsageError } from "./lib/cli.js";
import { unzipAgencyFiles } from "./lib/course-data.js";
import { bar, int, mb, pct, rate, secs, table } from "./lib/format.js";
import {
  type AgencyLive,
  exitText,
  type LotteryEvent,
  type LotteryResult,
  LotteryRun,
  type SyncMode,
  THROWAWAY_PG_SETTINGS,
} from "./lib/lottery.js";

export const USAGE = `Usage: npm run lottery -- [options]
       node dist/tools/run-local.js [options]

Runs the server and N agencies as local processes on 127.0.0.1 and prints a summary.

Data (default: the course's files, .data/agency-{N}.csv, unzipped from .data/dataset.zip
when missing; else, or with any generator option, generated like the course's:
${COURSE_BETS.join(", ")} bets with ${DEFAULT_WINNERS_PATTERN.join(", ")} winners):
  --agencies N          number of agencies (default 5, or the files found; more than the
                        files in .data/: generated data)
  --bets M | M1,M2,..   bets per agency (default: the course's sizes, repeated)
  --winners W | W1,..   winners per agency (default ${DEFAULT_WINNERS_PATTERN.join(",")}, repeated)
  --seed S              generator seed (default 1)
  --data DIR            use DIR/agency-1.csv .. agency-N.csv instead of generating
  --generate            generate data even if .data/ has the course's files
Servers (default: one server, bets in bets.csv):
  --replicas N          N server replicas sharing a PostgreSQL database: a throwaway
                        PostgreSQL 15 cluster in the run directory (Debian package
                        postgresql), stopped at the end; agency i starts at replica
                        (i-1) mod N and fails over to the others
  --database URL        use this PostgreSQL instead (postgres://user@host:port/db; it must
                        hold no lottery yet); 1 replica unless --replicas says more
  --reset-database      with --database: drop the lottery's tables there first (bets,
                        agencies, draw, winners)
Agencies:
  --fleet               run every agency from ONE load-generator process
                        (quiniela-agency --agencies 1-N --data DIR), not N processes
  --concurrency N       with --fleet: agencies streaming at once (its default: 32)
Run:
  --tls                 server and agencies over mutual TLS, with throwaway certificates
                        (npm run certs) made in the run directory's certs/
  --sync MODE           server writes: fdatasync (default, durable), fsync, none
                        (the file store's; PostgreSQL commits are always durable)
  --window N            batches in flight per agency (agency default 32)
  --max-amount N        bets per batch at most (agency default 100; frames stay <= 8 kB)
  --timeout S           stop everything after S seconds (default 600)
  --keep                keep the run directory (data, bets.csv, logs; PostgreSQL's data)
Output:
  --progress MODE       auto (default: bars on a terminal, plain lines otherwise), bars,
                        plain, none
  --interval S          seconds between plain progress lines (default 1)
  --json FILE           also write the summary as JSON to FILE
  -h, --help            show this help

Exit status: 0 success, 1 a process failed or the numbers disagree, 2 usage error,
130 interrupted.
`;

export interface RunLocalOptions {
  agencies?: number;
  bets?: number | number[];
  winners?: number | number[];
  seed?: number;
  data?: string;
  generate: boolean;
  /** Server replicas over PostgreSQL; undefined: one server over bets.csv (or --database). */
  replicas?: number;
  database?: string;
  resetDatabase: boolean;
  fleet: boolean;
  concurrency?: number;
  tls: boolean;
  sync: SyncMode;
  window?: number;
  maxAmount?: number;
  timeoutS: number;
  keep: boolean;
  progress: "auto" | "bars" | "plain" | "none";
  intervalS: number;
  json?: string;
  help: boolean;
}

function intArg(name: string, s: string, min: number, max: number): number {
  if (!/^\d+$/.test(s.trim())) throw new UsageError(`--${name}: not an integer: '${s}'`);
  const v = Number(s);
  if (v < min || v > max) throw new UsageError(`--${name}: must be ${min}..${max}, got ${v}`);
  return v;
}

function intsArg(name: string, s: string): number | number[] {
  if (!s.includes(",")) return intArg(name, s, 0, 100_000_000);
  return s.split(",").map((p) => intArg(name, p, 0, 100_000_000));
}

function numArg(name: string, s: string, min: number): number {
  const v = Number(s);
  if (s.trim() === "" || !Number.isFinite(v) || v < min) {
    throw new UsageError(`--${name}: must be a number >= ${min}, got '${s}'`);
  }
  return v;
}

export function parseCli(argv: readonly string[]): RunLocalOptions {
  const values = parseOptions(argv, {
    ...DATASET_FLAGS,
    data: { type: "string" },
    generate: { type: "boolean" },
    replicas: { type: "string" },
    database: { type: "string" },
    "reset-database": { type: "boolean" },
    fleet: { type: "boolean" },
    tls: { type: "boolean" },
    concurrency: { type: "string" },
    sync: { type: "string" },
    window: { type: "string" },
    "max-amount": { type: "string" },
    timeout: { type: "string" },
    keep: { type: "boolean" },
    progress: { type: "string" },
    interval: { type: "string" },
    json: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  const str = (k: string) => values[k] as string | undefined;
  const o: RunLocalOptions = {
    generate: values.generate === true,
    resetDatabase: values["reset-database"] === true,
    fleet: values.fleet === true,
    tls: values.tls === true,
    sync: "fdatasync",
    timeoutS: 600,
    keep: values.keep === true,
    progress: "auto",
    intervalS: 1,
    help: values.help === true,
  };
  if (o.help) return o;
  if (str("agencies") !== undefined) {
    o.agencies = intArg("agencies", str("agencies")!, 1, o.fleet ? 10_000 : 1000);
  }
  if (str("replicas") !== undefined) o.replicas = intArg("replicas", str("replicas")!, 1, 16);
  if (str("database") !== undefined) {
    o.database = str("database")!.trim();
    if (!/^postgres(ql)?:\/\//.test(o.database)) {
      throw new UsageError(`--database: a postgres://user@host:port/db URL, got '${o.database}'`);
    }
  }
  if (o.resetDatabase && o.database === undefined) {
    throw new UsageError("--reset-database goes with --database");
  }
  if (str("concurrency") !== undefined) {
    if (!o.fleet) throw new UsageError("--concurrency goes with --fleet");
    o.concurrency = intArg("concurrency", str("concurrency")!, 1, 10_000);
  }
  if (str("bets") !== undefined) o.bets = intsArg("bets", str("bets")!);
  if (str("winners") !== undefined) o.winners = intsArg("winners", str("winners")!);
  if (str("seed") !== undefined) o.seed = intArg("seed", str("seed")!, 0, 0xffffffff);
  if (str("data") !== undefined) o.data = str("data");
  if (o.data !== undefined && o.generate)
    throw new UsageError("--data and --generate exclude each other");
  const generating = o.bets !== undefined || o.winners !== undefined || o.seed !== undefined;
  if (o.data !== undefined && generating) {
    throw new UsageError("--bets, --winners and --seed describe generated data; not with --data");
  }
  const sync = str("sync");
  if (sync !== undefined) {
    if (sync !== "fdatasync" && sync !== "fsync" && sync !== "none") {
      throw new UsageError(`--sync: fdatasync, fsync or none, got '${sync}'`);
    }
    if (usesPostgres(o)) {
      throw new UsageError(
        "--sync is the file store's; with PostgreSQL every commit is durable (fsync on)",
      );
    }
    o.sync = sync;
  }
  if (str("window") !== undefined) o.window = intArg("window", str("window")!, 1, 1024);
  if (str("max-amount") !== undefined)
    o.maxAmount = intArg("max-amount", str("max-amount")!, 1, 65535);
  if (str("timeout") !== undefined) o.timeoutS = numArg("timeout", str("timeout")!, 1);
  if (str("interval") !== undefined) o.intervalS = numArg("interval", str("interval")!, 0.05);
  const progress = str("progress");
  if (progress !== undefined) {
    if (progress !== "auto" && progress !== "bars" && progress !== "plain" && progress !== "none") {
      throw new UsageError(`--progress: auto, bars, plain or none, got '${progress}'`);
    }
    o.progress = progress;
  }
  if (str("json") !== undefined) o.json = str("json");
  return o;
}

/** --replicas or --database: the servers share a PostgreSQL database instead of bets.csv. */
export function usesPostgres(o: Pick<RunLocalOptions, "replicas" | "database">): boolean {
  return o.replicas !== undefined || o.database !== undefined;
}

// ------------------------------------------------------------------------------------------
// Data

interface DataPlan {
  /** How the data was chosen, for the header. */
  description: string;
  /** Said once, under the header: how to choose other data. */
  hint?: string;
  files: string[];
  /** Rows per agency (CSV records), as generated or read from the files. */
  rows: number[];
  /** Winners per agency (number 7574), as generated or read from the files. */
  winners: number[];
  generated: DatasetResult | null;
}

/** agency-1.csv, agency-2.csv, ... that exist in `dir`, consecutive from 1. */
function agencyFiles(dir: string, wanted?: number): string[] {
  const out: string[] = [];
  for (let n = 1; wanted === undefined || n <= wanted; n++) {
    const p = join(dir, `agency-${n}.csv`);
    if (!existsSync(p)) {
      if (wanted !== undefined) throw new UsageError(`${p} not found (--agencies ${wanted})`);
      break;
    }
    out.push(p);
  }
  return out;
}

async function planData(
  o: RunLocalOptions,
  runDir: string,
  write: (s: string) => void,
): Promise<DataPlan> {
  const generating = o.bets !== undefined || o.winners !== undefined || o.seed !== undefined;
  let userDir: string | null = null;
  let how = "";
  if (o.data !== undefined) {
    userDir = resolve(o.data);
    how = `files in ${o.data} (--data)`;
  } else if (!o.generate && !generating) {
    // The course's files: unzipped from .data/dataset.zip when they are not there yet.
    const unzipped = await unzipAgencyFiles(join(".data", "dataset.zip"), ".data");
    if (unzipped.length > 0) write(`unzipped ${unzipped.join(", ")} from .data/dataset.zip\n`);
    // More agencies than files there (--agencies N): generated data, as without files.
    const have = agencyFiles(".data").length;
    if (have > 0 && (o.agencies === undefined || have >= o.agencies)) {
      userDir = resolve(".data");
      how =
        unzipped.length > 0
          ? "the course's files, unzipped from .data/dataset.zip into .data/"
          : "the files in .data/ (found there automatically)";
    }
  }
  if (userDir !== null) {
    const files = agencyFiles(userDir, o.agencies);
    if (files.length === 0) throw new UsageError(`no agency-1.csv in ${userDir}`);
    // Read once up front: the progress bars' totals and what each agency must end with.
    const counts = await Promise.all(files.map((f) => countAgencyFile(f)));
    return {
      description: how,
      ...(o.data === undefined ? { hint: "--generate runs synthetic data instead" } : {}),
      files,
      rows: counts.map((c) => c.rows),
      winners: counts.map((c) => c.winners),
      generated: null,
    };
  }
  const agencies = o.agencies ?? (Array.isArray(o.bets) ? o.bets.length : COURSE_BETS.length);
  const bets = o.bets ?? courseBets(agencies);
  let plan: { bets: number[]; winners: number[] };
  try {
    plan = planDataset({ agencies, bets, winners: o.winners });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const seed = o.seed ?? 1;
  const out = join(runDir, "data");
  const started = performance.now();
  const generated = await generateDataset({
    out,
    agencies,
    bets: plan.bets,
    winners: plan.winners,
    seed,
  });
  write(
    `generated ${int(generated.total.rows)} bets (${int(generated.total.winners)} winners) for ` +
      `${agencies} agencies in ${secs(performance.now() - started)} s\n`,
  );
  return {
    description: `synthetic, generated with seed ${seed} into ${out}`,
    files: generated.agencies.map((a) => a.path),
    rows: generated.agencies.map((a) => a.rows),
    winners: generated.agencies.map((a) => a.winners),
    generated,
  };
}

// ------------------------------------------------------------------------------------------
// Progress

interface Progress {
  event(e: LotteryEvent): void;
  start(run: LotteryRun): void;
  stop(): void;
}

/** A load generator's agencies get one line each when they end only up to this many. */
const FLEET_AGENCY_LINES = 20;

function serverName(e: { replica: number; replicas: number }): string {
  return e.replicas === 1 ? "server" : `replica ${e.replica}`;
}

const PHASE_TEXT: Record<AgencyLive["phase"], string> = {
  starting: "starting",
  sending: "sending",
  waiting_draw: "waiting for the draw",
  done: "done",
  failed: "FAILED",
};

function totals(run: LotteryRun, rows: readonly number[]) {
  let sent = 0;
  let expected = 0;
  let done = 0;
  run.agencies.forEach((a, i) => {
    sent += a.sent;
    expected += Math.max(rows[i] ?? 0, a.sent);
    if (a.phase === "done" || a.phase === "waiting_draw") done++;
  });
  return { sent, expected, done };
}

/** Plain lines: events as they happen and a progress line every `intervalS`. */
class PlainProgress implements Progress {
  private timer: NodeJS.Timeout | null = null;
  private run: LotteryRun | null = null;

  constructor(
    private readonly write: (s: string) => void,
    private readonly rows: readonly number[],
    private readonly intervalS: number,
  ) {}

  event(e: LotteryEvent): void {
    const t = `[${secs(e.at).padStart(6)}s]`;
    switch (e.kind) {
      case "server_ready":
        this.write(`${t} ${serverName(e)} listening on 127.0.0.1:${e.port} (pid ${e.pid})\n`);
        break;
      case "agencies_started":
        this.write(
          e.fleet
            ? `${t} load generator started for ${this.rows.length} agencies (pid ${e.pids[0]})\n`
            : `${t} ${e.pids.length} agencies started (pids ${e.pids.join(" ")})\n`,
        );
        break;
      case "fleet_exit":
        this.write(`${t} load generator finished: ${exitText(e.exit)}\n`);
        break;
      case "agency_exit": {
        const a = e.agency;
        // one line per agency of a load generator only while that stays readable
        if (e.fleet && this.rows.length > FLEET_AGENCY_LINES) break;
        const w = a.winners === null ? "no winners" : `${a.winners} winners`;
        this.write(
          `${t} agency ${a.id} finished: ${int(a.stored ?? a.sent)} bets, ${w}, ${exitText(a.exit!)}\n`,
        );
        break;
      }
      case "draw":
        this.line(e.at);
        this.write(
          this.run && this.run.servers.length > 1
            ? `${t} draw done (sorteo, replica ${e.replica})\n`
            : `${t} draw done (sorteo)\n`,
        );
        break;
      case "stopping":
        this.write(`${t} stopping: ${e.reason}\n`);
        break;
    }
  }

  private line(at?: number): void {
    const run = this.run;
    if (!run) return;
    const { sent, expected, done } = totals(run, this.rows);
    const t = `[${secs(at ?? run.elapsed()).padStart(6)}s]`;
    this.write(
      `${t} progress: sent ${int(sent)}/${int(expected)} bets (${pct(sent, expected).trim()}), ` +
        `stored ${int(run.server.stored)}, ${done}/${run.agencies.length} agencies done sending\n`,
    );
  }

  start(run: LotteryRun): void {
    this.run = run;
    this.timer = setInterval(() => this.line(), this.intervalS * 1000);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/** Bars redrawn in place (a terminal): one line per agency plus a totals line. */
class BarProgress implements Progress {
  private timer: NodeJS.Timeout | null = null;
  private run: LotteryRun | null = null;
  private drawn = 0;
  private header: string[] = [];

  constructor(
    private readonly write: (s: string) => void,
    private readonly rows: readonly number[],
    private readonly columns: number,
    private readonly screenRows: number,
  ) {}

  event(e: LotteryEvent): void {
    if (e.kind === "server_ready")
      this.header.push(`${serverName(e)} listening on 127.0.0.1:${e.port} (pid ${e.pid})`);
    if (e.kind === "agencies_started")
      this.header.push(
        e.fleet ? `load generator pid: ${e.pids[0]}` : `agency pids: ${e.pids.join(" ")}`,
      );
    if (e.kind === "stopping") this.header.push(`stopping: ${e.reason}`);
  }

  start(run: LotteryRun): void {
    this.run = run;
    this.write("\x1b[?25l"); // hide the cursor while redrawing
    this.timer = setInterval(() => this.draw(), 100);
    this.draw();
  }

  private draw(): void {
    const run = this.run;
    if (!run) return;
    const lines = [...this.header];
    const { sent, expected, done } = totals(run, this.rows);
    const drawAt = run.server.drawAt;
    lines.push(
      `${secs(run.elapsed()).padStart(7)} s  sent ${int(sent)}/${int(expected)} (${pct(sent, expected).trim()})` +
        `  stored ${int(run.server.stored)}  done sending ${done}/${run.agencies.length}` +
        (drawAt === null ? "" : `  draw at ${secs(drawAt)} s`),
    );
    const room = Math.max(3, this.screenRows - lines.length - 2);
    const cells = Math.max(10, Math.min(40, this.columns - 60));
    const shown = run.agencies.length <= room ? run.agencies : run.agencies.slice(0, room - 1);
    const idWidth = String(run.agencies.length).length;
    for (const a of shown) {
      const total = Math.max(this.rows[a.id - 1] ?? 0, a.sent);
      const w = a.winners === null ? "" : `  ${a.winners} winners`;
      lines.push(
        `agency ${String(a.id).padStart(idWidth)} ${bar(total > 0 ? a.sent / total : 1, cells)} ${pct(a.sent, total)} ` +
          `${int(a.sent).padStart(11)}/${int(total)}  ${PHASE_TEXT[a.phase]}${w}`,
      );
    }
    if (shown.length < run.agencies.length) {
      const rest = run.agencies.slice(shown.length);
      const restDone = rest.filter((a) => a.phase === "done").length;
      lines.push(`… ${rest.length} more agencies (${restDone} done)`);
    }
    let out = this.drawn > 0 ? `\x1b[${this.drawn}A` : "";
    for (const l of lines) out += `\r\x1b[2K${l.slice(0, this.columns - 1)}\n`;
    // fewer lines than last time: clear what is left below
    for (let i = lines.length; i < this.drawn; i++) out += "\r\x1b[2K\n";
    if (this.drawn > lines.length) out += `\x1b[${this.drawn - lines.length}A`;
    this.drawn = lines.length;
    this.write(out);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.draw();
    this.write("\x1b[?25h");
  }
}

class NoProgress implements Progress {
  event(): void {}
  start(): void {}
  stop(): void {}
}

// ------------------------------------------------------------------------------------------
// Summary

export interface RunLocalSummary {
  ok: boolean;
  interrupted: boolean;
  problems: string[];
  data: string;
  runDir: string;
  sync: SyncMode;
  /** Where the bets went: the file store's bets.csv, or PostgreSQL's bets table. */
  storage: "bets.csv" | "postgres";
  /** PostgreSQL: the database URL (without a password). */
  database: string | null;
  agencies: Array<{
    agency: number;
    sent: number | null;
    winners: number | null;
    expectedBets: number | null;
    expectedWinners: number | null;
    storedRows: number;
    storedWinners: number;
    exit: string;
    /** null with --fleet (every agency shares the load generator: see `fleet`). */
    peakRssMb: number | null;
  }>;
  total: { bets: number; winners: number; storedRows: number };
  /** The server; with several replicas: the first bad exit, the largest peak, the draw. */
  server: { exit: string; peakRssMb: number; drawS: number | null };
  /** Every server process (one with the file store). */
  servers: Array<{
    name: string;
    port: number | null;
    exit: string;
    peakRssMb: number;
    /** Its peak when the last DONE was acknowledged (before the draw). */
    ingestPeakRssMb: number;
    /** Bets it acknowledged (its `apuesta_recibida | success` lines). */
    received: number;
    /** DONEs it acknowledged (`agency_done` lines). */
    dones: number;
    /** `sorteo | success` lines it logged. */
    draws: number;
  }>;
  /** --fleet: the one agency process. */
  fleet: { pid: number; exit: string; peakRssMb: number } | null;
  seconds: number | null;
  agenciesSeconds: number | null;
  betsPerSecond: number | null;
}

function exitCell(e: ExitInfo | null): string {
  return e === null ? "-" : e.signal ? e.signal : String(e.code);
}

function summarize(
  plan: DataPlan,
  r: LotteryResult,
  stored: StoredCounts,
  runDir: string,
  sync: SyncMode,
  fleet: boolean,
): RunLocalSummary {
  const pg = r.storage.kind === "postgres";
  const where = pg ? "the bets table" : "bets.csv";
  const problems: string[] = [];
  if (r.failure !== null) problems.push(r.failure);
  const agencies = r.agencies.map((a, i) => {
    const st = stored.perAgency.get(a.id) ?? { rows: 0, winners: 0 };
    const exit = a.exit;
    if (exit?.code === 3) {
      problems.push(
        `agency ${a.id}: ${a.invalidRows} invalid rows and ${a.rejectedBets} rejected bets in its file (exit 3)`,
      );
    } else if (exit !== null && exit.code !== 0 && r.failure === null) {
      problems.push(`agency ${a.id}: ${exitText(exit)}`);
    }
    const sent = a.stored;
    if (sent !== null && sent !== st.rows) {
      problems.push(
        `agency ${a.id}: sent ${int(sent)} bets but ${where} holds ${int(st.rows)} of its rows`,
      );
    }
    if (a.winners !== null && a.winners !== st.winners) {
      problems.push(`agency ${a.id}: ${a.winners} winners reported, ${where} holds ${st.winners}`);
    }
    const drawn = stored.drawn?.get(a.id) ?? 0;
    if (stored.drawn !== undefined && a.winners !== null && a.winners !== drawn) {
      problems.push(
        `agency ${a.id}: ${a.winners} winners reported, the winners table holds ${drawn}`,
      );
    }
    const expWinners = plan.winners[i] ?? null;
    const expBets = plan.rows[i] ?? null;
    const source = plan.generated ? "the generator wrote" : "its file holds";
    if (expBets !== null && sent !== null && sent !== expBets) {
      problems.push(`agency ${a.id}: sent ${int(sent)} bets, ${source} ${int(expBets)}`);
    }
    if (expWinners !== null && a.winners !== null && a.winners !== expWinners) {
      problems.push(`agency ${a.id}: ${a.winners} winners, ${source} ${expWinners}`);
    }
    return {
      agency: a.id,
      sent,
      winners: a.winners,
      expectedBets: expBets,
      expectedWinners: expWinners,
      storedRows: st.rows,
      storedWinners: st.winners,
      exit: exitCell(exit),
      peakRssMb: fleet ? null : mb(a.proc?.stats.peakRssKb ?? 0),
    };
  });
  const totalBets = agencies.reduce((s, a) => s + (a.sent ?? 0), 0);
  const totalWinners = agencies.reduce((s, a) => s + (a.winners ?? 0), 0);
  if (stored.rows !== totalBets) {
    problems.push(`${where} holds ${int(stored.rows)} rows, the agencies sent ${int(totalBets)}`);
  }
  if (stored.bad > 0) problems.push(`bets.csv has ${stored.bad} malformed rows`);
  for (const agency of stored.perAgency.keys()) {
    if (agency < 1 || agency > r.agencies.length)
      problems.push(`${where} has rows of agency ${agency}`);
  }
  for (const s of r.servers) {
    const se = s.exit;
    if (se !== null && (se.code !== 0 || se.signal !== null) && r.failure === null) {
      problems.push(`${s.name}: ${exitText(se)}`);
    }
  }
  const draws = r.servers.reduce((n, s) => n + s.draws, 0);
  if (pg && r.failure === null && draws !== 1) {
    problems.push(`${draws} sorteo lines across the servers, expected exactly one`);
  }
  const fleetProc = fleet ? (r.agencyProcs[0] ?? null) : null;
  const last = r.times.lastWinners;
  const agStart = r.times.agenciesStarted;
  return {
    ok: problems.length === 0 && !r.interrupted,
    interrupted: r.interrupted,
    problems,
    data: plan.description,
    runDir,
    sync,
    storage: pg ? "postgres" : "bets.csv",
    database: r.storage.kind === "postgres" ? redactUrl(r.storage.url) : null,
    agencies,
    total: { bets: totalBets, winners: totalWinners, storedRows: stored.rows },
    server: {
      exit: exitCell(r.server.exit),
      peakRssMb: Math.max(...r.servers.map((s) => mb(s.proc?.stats.peakRssKb ?? 0))),
      drawS: r.server.drawAt === null ? null : r.server.drawAt / 1000,
    },
    servers: r.servers.map((s) => ({
      name: s.name,
      port: s.port,
      exit: exitCell(s.exit),
      peakRssMb: mb(s.proc?.stats.peakRssKb ?? 0),
      ingestPeakRssMb: mb(s.peakRssBeforeDrawKb ?? 0),
      received: s.stored,
      dones: s.agenciesDone,
      draws: s.draws,
    })),
    fleet:
      fleetProc === null
        ? null
        : {
            pid: fleetProc.pid,
            exit: exitCell(fleetProc.exit),
            peakRssMb: mb(fleetProc.stats.peakRssKb),
          },
    seconds: last === null ? null : last / 1000,
    agenciesSeconds: last === null || agStart === null ? null : (last - agStart) / 1000,
    betsPerSecond: last === null ? null : Math.round(totalBets / (last / 1000)),
  };
}

/** postgres://user:secret@host/db -> postgres://user@host/db (for output). */
function redactUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/@]*):[^@]*@/, "$1@");
}

/**
 * An existing database must not hold a lottery already (its positions and draw would be this
 * run's); with `reset`, the lottery's tables are dropped first.
 */
async function prepareDatabase(url: string, reset: boolean): Promise<void> {
  const { default: pg } = await import("pg");
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    if (reset) {
      await client.query("DROP TABLE IF EXISTS bets, agencies, draw, winners");
      return;
    }
    const r = await client.query<{ t: string | null }>(
      "SELECT to_regclass(t)::text AS t FROM unnest(ARRAY['bets', 'agencies', 'draw', 'winners']) AS t",
    );
    const found = r.rows.flatMap((x) => (x.t === null ? [] : [x.t]));
    if (found.length > 0) {
      throw new Error(
        `it already holds a lottery's tables (${found.join(", ")}): use an empty database, ` +
          "or --reset-database to drop them",
      );
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Above this many agencies the table shows the first ones and those with a problem. */
const SUMMARY_ROWS = 50;

function renderSummary(s: RunLocalSummary): string {
  const known = (v: number | null) => (v === null ? "-" : int(v));
  const pg = s.storage === "postgres";
  const anyExpected = s.agencies.some((a) => a.expectedWinners !== null);
  const withRss = s.fleet === null;
  const head = ["agency", "bets sent", "winners"];
  if (anyExpected) head.push("expected");
  head.push(pg ? "rows in bets table" : "rows in bets.csv", "exit");
  if (withRss) head.push("peak RSS");
  const rows: string[][] = [head];
  // an agency whose numbers all agree (the only ones a long table leaves out)
  const fine = (a: RunLocalSummary["agencies"][number]) =>
    a.exit === "0" &&
    a.sent === a.storedRows &&
    a.winners === a.storedWinners &&
    (a.expectedBets === null || a.expectedBets === a.sent) &&
    (a.expectedWinners === null || a.expectedWinners === a.winners);
  let hidden = 0;
  for (const a of s.agencies) {
    if (s.agencies.length > SUMMARY_ROWS && a.agency > 10 && fine(a)) {
      hidden++;
      continue;
    }
    const r = [String(a.agency), known(a.sent), known(a.winners)];
    if (anyExpected) r.push(`${known(a.expectedBets)} / ${known(a.expectedWinners)}`);
    r.push(int(a.storedRows), a.exit);
    if (withRss) r.push(`${(a.peakRssMb ?? 0).toFixed(1)} MB`);
    rows.push(r);
  }
  if (hidden > 0) rows.push(["…", `${hidden} more`, ...Array<string>(head.length - 2).fill("")]);
  const tot = ["total", int(s.total.bets), int(s.total.winners)];
  if (anyExpected) {
    const eb = s.agencies.reduce((n, a) => n + (a.expectedBets ?? 0), 0);
    const ew = s.agencies.reduce((n, a) => n + (a.expectedWinners ?? 0), 0);
    tot.push(`${int(eb)} / ${int(ew)}`);
  }
  tot.push(int(s.total.storedRows), "");
  if (withRss) tot.push("");
  rows.push(tot);
  const align = head.map(() => "right" as const);
  let out = `\nSummary (${s.agencies.length} agencies; data: ${s.data})\n`;
  if (anyExpected) out += "(expected = bets / winners in the agencies' files)\n";
  out += table(rows, align);
  if (hidden > 0) {
    out += `(${hidden} agencies not shown: each exited 0 and its bets and winners agree)\n`;
  }
  const rowsOk = s.total.storedRows === s.total.bets;
  if (!pg) {
    out += `server: exit ${s.server.exit}, peak RSS ${s.server.peakRssMb.toFixed(1)} MB, writes ${s.sync}`;
    out +=
      s.server.drawS === null ? ", no draw\n" : `, draw done at ${s.server.drawS.toFixed(3)} s\n`;
  } else {
    const n = s.servers.length;
    const total = s.servers.reduce((t, x) => t + x.received, 0);
    out += `servers: ${n === 1 ? "1 server" : `${n} replicas`} over PostgreSQL (${s.database}), durable commits`;
    out +=
      s.server.drawS === null ? ", no draw\n" : `, draw done at ${s.server.drawS.toFixed(3)} s\n`;
    for (const x of s.servers) {
      const share = total > 0 ? ` (${pct(x.received, total).trim()})` : "";
      out +=
        `  ${x.name}: 127.0.0.1:${x.port ?? "-"}, exit ${x.exit}, peak RSS ${x.peakRssMb.toFixed(1)} MB ` +
        `(${x.ingestPeakRssMb.toFixed(1)} MB before the draw), received ${int(x.received)} bets${share}, ` +
        `${x.dones} DONEs${x.draws > 0 ? `, sorteo${x.draws > 1 ? ` ×${x.draws}` : ""}` : ""}\n`;
    }
    const drawers = s.servers.filter((x) => x.draws > 0);
    const draws = drawers.reduce((t, x) => t + x.draws, 0);
    out +=
      draws === 1
        ? `sorteo: logged once, by ${drawers[0]!.name}\n`
        : `sorteo: logged ${draws} times${drawers.length > 0 ? ` (${drawers.map((x) => x.name).join(", ")})` : ""}\n`;
  }
  if (s.fleet !== null) {
    out += `load generator: one process (pid ${s.fleet.pid}) for ${s.agencies.length} agencies, exit ${s.fleet.exit}, peak RSS ${s.fleet.peakRssMb.toFixed(1)} MB\n`;
  }
  out += `${pg ? "bets table" : "bets.csv"}: ${int(s.total.storedRows)} rows ${rowsOk ? "= " : "≠ "}${int(s.total.bets)} bets sent\n`;
  if (s.seconds !== null) {
    out +=
      `time: ${s.seconds.toFixed(3)} s from start to the last agency's winners ` +
      `(${(s.agenciesSeconds ?? 0).toFixed(3)} s after the agencies started); ` +
      `${rate(s.total.bets, s.seconds * 1000)} bets/s\n`;
  }
  if (s.interrupted) out += "result: INTERRUPTED\n";
  else if (s.ok)
    out += `result: OK (${s.agencies.length} agencies got their winners; the numbers agree)\n`;
  else out += `result: FAILED\n${s.problems.map((p) => `  - ${p}\n`).join("")}`;
  return out;
}

// ------------------------------------------------------------------------------------------
// Main

export async function main(argv: readonly string[]): Promise<number> {
  const stdout = process.stdout;
  const write = (s: string) => {
    stdout.write(s);
  };
  let o: RunLocalOptions;
  try {
    o = parseCli(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`run-local: ${e.message}\nTry 'run-local --help'.\n`);
    return 2;
  }
  if (o.help) {
    write(USAGE);
    return 0;
  }
  const notBuilt = checkBuilt();
  if (notBuilt) {
    process.stderr.write(`run-local: ${notBuilt}\n`);
    return 1;
  }
  const pgMode = usesPostgres(o);
  if (pgMode && o.database === undefined) {
    // before generating anything: a throwaway cluster needs the machine's PostgreSQL 15
    const missing = pgClusterUnavailable();
    if (missing !== null) {
      process.stderr.write(`run-local: --replicas: ${missing}\n`);
      return 1;
    }
  }

  const ac = new AbortController();
  let sigints = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    sigints++;
    if (sigints === 1) {
      process.stderr.write(`\nrun-local: ${sig}: stopping the processes it started...\n`);
      ac.abort();
    } else {
      process.stderr.write("run-local: still stopping (they get SIGKILL after 10 s)\n");
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  stopWhenOutputGone("run-local", () => ac.abort());

  const runDir = await mkdtemp(join(tmpdir(), "quiniela-run-"));
  let keepDir = o.keep;
  let cluster: PgCluster | null = null;
  try {
    let plan: DataPlan;
    try {
      plan = await planData(o, runDir, write);
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      process.stderr.write(`run-local: ${e.message}\n`);
      return 2;
    }
    const totalRows = plan.rows.reduce((a, b) => a + b, 0);
    if (ac.signal.aborted) return 130;
    // ---- the database (PostgreSQL store)
    let databaseUrl: string | undefined;
    let serversText = "";
    const replicas = o.replicas ?? 1;
    const serversName = replicas === 1 ? "1 server" : `${replicas} replicas`;
    if (o.database !== undefined) {
      try {
        await prepareDatabase(o.database, o.resetDatabase);
      } catch (e) {
        process.stderr.write(
          `run-local: --database ${redactUrl(o.database)}: ${(e as Error).message}\n`,
        );
        return 1;
      }
      databaseUrl = o.database;
      serversText = `${serversName} over PostgreSQL at ${redactUrl(o.database)}`;
    } else if (pgMode) {
      const started = performance.now();
      try {
        cluster = await startPgCluster({
          dir: join(runDir, "pg"),
          settings: THROWAWAY_PG_SETTINGS,
        });
        databaseUrl = await cluster.createDatabase("quiniela");
      } catch (e) {
        if (ac.signal.aborted) return 130;
        process.stderr.write(`run-local: cannot start PostgreSQL: ${(e as Error).message}\n`);
        keepDir = true;
        write(`run directory kept: ${runDir} (pg/postgres.log)\n`);
        return 1;
      }
      write(
        `started a throwaway PostgreSQL 15 cluster on 127.0.0.1:${cluster.port} in ` +
          `${secs(performance.now() - started)} s\n`,
      );
      serversText =
        `${serversName} over a throwaway PostgreSQL 15 (127.0.0.1:${cluster.port}, data in ` +
        `${join(runDir, "pg")}; stopped at the end)`;
    }
    if (ac.signal.aborted) return 130;
    let tlsEnv: ReturnType<typeof mutualTlsEnv> | undefined;
    if (o.tls) {
      try {
        tlsEnv = mutualTlsEnv(
          makeCerts({ out: join(runDir, "certs"), agencies: plan.files.length }),
        );
      } catch (e) {
        process.stderr.write(`run-local: --tls: ${(e as Error).message}\n`);
        return 1;
      }
    }
    const agenciesText = o.fleet
      ? `one load-generator process (--fleet${o.concurrency === undefined ? "" : `, concurrency ${o.concurrency}`}), `
      : "";
    write(
      `Quiniela local run: ${plan.files.length} agencies, ${int(totalRows)} bets\n` +
        `  data: ${plan.description}${plan.hint ? ` (${plan.hint})` : ""}\n` +
        (pgMode
          ? `  servers: ${serversText}; durable commits (fsync on, synchronous_commit on)\n  `
          : `  server writes: ${o.sync}${o.sync === "none" ? " (OS-buffered, not durable)" : " (durable acknowledgements)"}; `) +
        `${o.tls ? "mutual TLS (certificates in certs/); " : ""}agencies: ${agenciesText}window ${o.window ?? "32 (default)"}, max-amount ${o.maxAmount ?? "100 (default)"}\n` +
        `  run directory: ${runDir}${o.keep ? " (kept)" : ""}\n`,
    );

    const mode =
      o.progress === "auto"
        ? stdout.isTTY && process.env.TERM !== "dumb"
          ? "bars"
          : "plain"
        : o.progress;
    const progress: Progress =
      mode === "bars"
        ? new BarProgress(write, plan.rows, stdout.columns || 100, stdout.rows || 40)
        : mode === "plain"
          ? new PlainProgress(write, plan.rows, o.intervalS)
          : new NoProgress();
    const run = new LotteryRun({
      runDir,
      dataFiles: plan.files,
      replicas,
      databaseUrl,
      fleet: o.fleet,
      fleetConcurrency: o.concurrency,
      ...tlsEnv,
      sync: o.sync,
      window: o.window,
      maxAmount: o.maxAmount,
      serverLogLevel: "DEBUG",
      // per-batch lines (DEBUG) are what the progress is drawn from
      agencyLogLevel: mode === "none" ? "INFO" : "DEBUG",
      timeoutMs: o.timeoutS * 1000,
      sampleMs: 20,
      keepLogs: true,
      signal: ac.signal,
      onEvent: (e) => progress.event(e),
    });
    progress.start(run);
    let result: LotteryResult;
    try {
      result = await run.run();
    } finally {
      progress.stop();
    }
    let stored: StoredCounts;
    try {
      stored = await countStored(result.storage);
    } catch (e) {
      // the run's outcome is still worth showing: every row then counts as missing
      write(`cannot count the stored bets: ${(e as Error).message}\n`);
      stored = { rows: 0, perAgency: new Map(), bad: 0 };
    }
    const summary = summarize(plan, result, stored, runDir, o.sync, o.fleet);
    write(renderSummary(summary));
    if (!summary.ok && !summary.interrupted) {
      const procs: ManagedProcess[] = [
        ...result.servers.flatMap((s) => (s.proc ? [s.proc] : [])),
        ...result.agencyProcs,
      ];
      for (const p of procs) {
        if (!p || p.exit === null) continue;
        const bad = p.exit.signal !== null || (p.exit.code !== 0 && p.exit.code !== null);
        if (!bad) continue;
        write(`\nlast lines of ${p.name} (${exitText(p.exit)}):\n`);
        for (const l of p.lastLines().slice(-10)) write(`  ${l}\n`);
      }
      keepDir = true;
    }
    if (keepDir) {
      const what = cluster
        ? `pg/postgres.log${o.keep ? ", pg/data" : ""}`
        : pgMode
          ? ""
          : "bets.csv";
      write(
        `run directory kept: ${runDir} (logs/${what ? `, ${what}` : ""}${plan.generated ? ", data/" : ""})\n`,
      );
    }
    if (o.json !== undefined) await writeFile(o.json, `${JSON.stringify(summary, null, 2)}\n`);
    if (summary.interrupted) return 130;
    return summary.ok ? 0 : 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (cluster !== null) {
      // stopped whatever happened; its data goes unless --keep (its log stays with a kept run)
      await cluster.stop();
      if (!o.keep) await rm(join(runDir, "pg", "data"), { recursive: true, force: true });
    }
    if (!keepDir) await rm(runDir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
