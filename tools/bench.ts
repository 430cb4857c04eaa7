#!/usr/bin/env node
/**
 * bench: runs the real server and agencies on generated data at several scales and reports
 * end-to-end throughput, time to the last agency's winners and peak memory.
 *
 *   npm run bench [-- options]          (build, then node dist/tools/bench.js)
 *
 * Scales: `course` (the course's 78,697 bets in 5 agencies), `5x1M` (5 agencies x 1,000,000),
 * `50x100k` (50 agencies x 100,000), `1000x5k` (1,000 agencies x 5,000, driven by one
 * load-generator process: `quiniela-agency --agencies 1-1000 --data DIR`). Each scale runs a
 * base configuration (one server, the file store: window 32, durable fdatasync writes, the
 * agency's default max-amount) and, unless --no-variants, the variants: window 1 (course, 5x1M),
 * STORAGE_SYNC=none (course, 5x1M) and full 8 kB frames (max-amount 65535; course, 5x1M); and
 * `pg3`, 3 server replicas sharing a throwaway PostgreSQL 15 cluster (durable commits; 5x1M,
 * 1000x5k), and `pg1`, one server over it (5x1M). --configs picks configurations, --scale-out
 * the scale-out rows. Every configuration
 * runs 3 times and the median is reported (--runs for the course scale, --large-runs for the
 * others).
 *
 * Measured per run (see docs/bench.md):
 *   seconds   from spawning the server to the last agency's `consulta_ganadores` line;
 *   bets/s    total bets / seconds;
 *   draw      when the server logged `sorteo | success`, and how long after the last
 *             `agency_done` (the draw reads bets.csv back);
 *   RSS       peak resident memory (VmHWM polled from /proc every 20 ms) of the server and
 *             of agency 1 (plus the largest of all agencies);
 *   CPU       user+system seconds of the server and of all agencies together (replicas: all
 *             servers together; PostgreSQL: the postmaster and all its processes).
 * Each run is also checked: every agency exits 0 with the generated number of winners and
 * bets.csv (PostgreSQL: the bets table) holds exactly the bets sent, one `sorteo` in all.
 *
 * Writes results/bench.json, results/bench.md and results/bench.svg (--out DIR), a chart of the
 * bets/s drawn from bench.json (tools/lib/chart.ts; `npm run chart` redraws it from any
 * bench.json). With --profile, also runs the base configuration of each selected scale once
 * more with `node --cpu-prof` on the server and agency 1 and writes
 * results/profile/<scale>/{server,agency-1}.cpuprofile and summary.md.
 * Not part of the test suite.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { cpus, platform, release, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { type PgCluster, pgClusterUnavailable, startPgCluster } from "../kit/pg-cluster.js";
import { describeExit } from "../kit/proc.js";
import { checkBuilt } from "../kit/programs.js";
import { treeCpuMs } from "../kit/stats.js";
import { countAgencyFile, countStored } from "../kit/stored.js";
import { makeCerts, mutualTlsEnv } from "./certs.js";
import {
  type AgencyFileResult,
  type DatasetResult,
  datasetTotal,
  defaultWinners,
  generateDataset,
} from "./gen-data.js";
import { benchChart } from "./lib/chart.js";
import { isMain, parseOptions, stopWhenOutputGone, UsageError } from "./lib/cli.js";
import { COURSE_ZIP, unzipAgencyFiles } from "./lib/course-data.js";
import { loadProfile, renderProfile, summarizeProfile } from "./lib/cpuprofile.js";
import { int, markdownTable, mb, secs, sig3, table } from "./lib/format.js";
import { COURSE_BETS, LotteryRun, type SyncMode, THROWAWAY_PG_SETTINGS } from "./lib/lottery.js";

export interface Scale {
  id: string;
  label: string;
  bets: readonly number[];
  small: boolean;
  /** The agencies run from one load-generator process (too many for a process each). */
  fleet?: boolean;
}

export const SCALES: readonly Scale[] = [
  { id: "course", label: "the course's files", bets: COURSE_BETS, small: true },
  { id: "5x1M", label: "5 × 1,000,000", bets: Array<number>(5).fill(1_000_000), small: false },
  { id: "50x100k", label: "50 × 100,000", bets: Array<number>(50).fill(100_000), small: false },
  {
    id: "1000x5k",
    label: "1,000 × 5,000",
    bets: Array<number>(1000).fill(5_000),
    small: false,
    fleet: true,
  },
];

interface Config {
  /** For --configs. */
  id: string;
  name: string;
  window: number;
  sync: SyncMode;
  /** undefined: the agency's default (100). */
  maxAmount?: number;
  /** Server replicas sharing a throwaway PostgreSQL (undefined: one server, the file store). */
  pgReplicas?: number;
  /** Agencies over mutual TLS (throwaway certificates made in the run directory). */
  tls?: boolean;
}

const BASE: Config = { id: "base", name: "base", window: 32, sync: "fdatasync" };
const VARIANTS: readonly Config[] = [
  { id: "window1", name: "window 1", window: 1, sync: "fdatasync" },
  { id: "sync-none", name: "sync none", window: 32, sync: "none" },
  { id: "8k", name: "8 kB frames", window: 32, sync: "fdatasync", maxAmount: 65535 },
];
const PG3: Config = {
  id: "pg3",
  name: "3 replicas + PostgreSQL",
  window: 32,
  sync: "fdatasync",
  pgReplicas: 3,
};
/** The same store with one server: what the replicas themselves cost. */
const PG1: Config = {
  id: "pg1",
  name: "1 server + PostgreSQL",
  window: 32,
  sync: "fdatasync",
  pgReplicas: 1,
};
/** The base configuration over mutual TLS: what encryption and client certificates cost. */
const TLS: Config = { id: "tls", name: "mutual TLS", window: 32, sync: "fdatasync", tls: true };
const CONFIGS: readonly Config[] = [BASE, ...VARIANTS, PG1, PG3, TLS];
/** Scales that get the variants. */
const VARIANT_SCALES = new Set(["course", "5x1M"]);
/** Scales that get 3 replicas + PostgreSQL (and 1 server + PostgreSQL: PG1_SCALES). */
const PG_SCALES = new Set(["5x1M", "1000x5k"]);
const PG1_SCALES = new Set(["5x1M"]);
/** --scale-out: the rows of the scale-out work (replicas, 1,000 agencies). */
const SCALE_OUT_SCALES = ["5x1M", "1000x5k"];
const isScaleOut = (scale: Scale, config: Config) =>
  config.pgReplicas !== undefined || scale.id === "1000x5k";

/** The configurations a scale runs by default. */
function configsOf(scale: Scale, variants: boolean): Config[] {
  return [
    BASE,
    ...(variants && VARIANT_SCALES.has(scale.id) ? VARIANTS : []),
    ...(PG1_SCALES.has(scale.id) ? [PG1] : []),
    ...(PG_SCALES.has(scale.id) ? [PG3] : []),
  ];
}

export interface RunRecord {
  ok: boolean;
  problems: string[];
  bets: number;
  seconds: number;
  agenciesSeconds: number;
  betsPerSecond: number;
  serverReadyS: number;
  drawAtS: number;
  /** From starting the agencies to the last agency_done (every bet durable and counted). */
  ingestS: number;
  drawS: number;
  serverPeakRssMb: number;
  /** The server's peak before the draw started (ingest only). */
  serverIngestRssMb: number;
  agency1PeakRssMb: number;
  agencyMaxPeakRssMb: number;
  serverCpuS: number;
  serverSysS: number;
  agenciesCpuS: number;
  agenciesSysS: number;
  /** Server processes, and the peak RSS of each (MB). */
  servers: number;
  serversPeakRssMb: number[];
  /** CPU seconds of PostgreSQL (postmaster and every backend) during the run; 0: file store. */
  postgresCpuS: number;
  /** When the last agency had booted (its first log line), since the start. */
  agenciesUpS: number;
  /**
   * CPU seconds the machine spent on anything but this run (from /proc/stat, minus the run's
   * processes and the bench itself): other work on the machine skews the figures.
   */
  otherCpuS: number;
}

export interface ScenarioResult {
  scale: string;
  config: string;
  /** "file" (bets.csv) or "postgres". */
  store: "file" | "postgres";
  replicas: number;
  /** The agencies ran from one load-generator process. */
  fleet: boolean;
  /** Agencies connected over mutual TLS. */
  tls: boolean;
  agencies: number;
  bets: number;
  window: number;
  sync: SyncMode;
  maxAmount: number | "default";
  runs: RunRecord[];
  median: RunRecord;
}

const USAGE = `Usage: npm run bench -- [options]

  --scales LIST     comma-separated: course,5x1M,50x100k,1000x5k (default: all);
                    1000x5k runs its agencies from one load-generator process
  --configs LIST    run these configurations on every chosen scale (default: each
                    scale's own): base (1 server, file store; all scales), window1,
                    sync-none, 8k (course, 5x1M), pg1 (1 server + PostgreSQL; 5x1M),
                    pg3 (3 replicas + PostgreSQL; 5x1M, 1000x5k), tls (base over
                    mutual TLS; only when named)
  --scale-out       the scale-out rows: 5x1M pg1 and pg3, 1000x5k base and pg3
                    (PostgreSQL 15 needed: Debian package postgresql)
  --quick           smoke run: the course scale once, no variants
  --runs N          runs per configuration at the course scale (default 3; median reported)
  --large-runs N    runs per configuration at the larger scales (default 3)
  --retries N       run again when other programs took > 10 % of the CPUs during a run
                    (default 2; the least disturbed run is kept, its other CPU reported)
  --no-variants     only the base configuration (window 32, fdatasync)
  --profile         also profile the base configuration of each scale (node --cpu-prof)
  --out DIR         where bench.json, bench.md, bench.svg and profile/ go (default results)
  --data-dir DIR    where the generated datasets are cached (default: quiniela-bench-data
                    in the temporary directory); a dataset already there is reused
  --keep-data       keep the datasets generated by this run (for the next one)
  --pg-settings "K=V ..."      extra postgresql.conf settings of the throwaway cluster
                    (experiments, e.g. "max_wal_size=4GB"); recorded in bench.json
  --server-env "K=V ..."       extra environment for every server (e.g.
                    "DATABASE_POOL_SIZE=4"); recorded in bench.json
  --server-node-args "FLAGS"   extra node flags for the server (experiments, e.g.
                    "--max-semi-space-size=2"); recorded in bench.json
  --agency-node-args "FLAGS"   the same for every agency
  -h, --help        show this help
`;

interface BenchOptions {
  scales: Scale[];
  /** Which (scale, configuration) rows run. */
  rows: Array<{ scale: Scale; config: Config }>;
  /** PostgreSQL rows were asked for by name (a missing PostgreSQL is then an error). */
  pgAsked: boolean;
  runs: number;
  largeRuns: number;
  retries: number;
  variants: boolean;
  profile: boolean;
  out: string;
  dataDir: string | null;
  keepData: boolean;
  serverNodeArgs: string[];
  pgSettings: Record<string, string>;
  serverEnv: Record<string, string>;
  agencyNodeArgs: string[];
  help: boolean;
}

/** "K=V K2=V2" -> { K: "V", K2: "V2" }. */
function keyValues(flag: string, text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of (text ?? "").split(" ").filter((a) => a !== "")) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new UsageError(`--${flag}: K=V pairs, got '${kv}'`);
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

function parseCli(argv: readonly string[]): BenchOptions {
  const values = parseOptions(argv, {
    scales: { type: "string" },
    configs: { type: "string" },
    "scale-out": { type: "boolean" },
    quick: { type: "boolean" },
    runs: { type: "string" },
    "large-runs": { type: "string" },
    retries: { type: "string" },
    "no-variants": { type: "boolean" },
    profile: { type: "boolean" },
    out: { type: "string" },
    "data-dir": { type: "string" },
    "keep-data": { type: "boolean" },
    "server-node-args": { type: "string" },
    "pg-settings": { type: "string" },
    "server-env": { type: "string" },
    "agency-node-args": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  const str = (k: string) => values[k] as string | undefined;
  const count = (k: string, d: number) => {
    const s = str(k);
    if (s === undefined) return d;
    if (!/^\d+$/.test(s) || Number(s) < 1)
      throw new UsageError(`--${k}: a positive integer, got '${s}'`);
    return Number(s);
  };
  const quick = values.quick === true;
  let scales = quick ? SCALES.filter((s) => s.id === "course") : [...SCALES];
  const scaleOut = values["scale-out"] === true;
  if (scaleOut) scales = SCALES.filter((s) => SCALE_OUT_SCALES.includes(s.id));
  const list = str("scales");
  if (list !== undefined) {
    scales = list.split(",").map((id) => {
      const s = SCALES.find((x) => x.id.toLowerCase() === id.trim().toLowerCase());
      if (!s) {
        throw new UsageError(
          `--scales: unknown scale '${id}' (${SCALES.map((x) => x.id).join(", ")})`,
        );
      }
      return s;
    });
  }
  const configList = str("configs");
  let picked: Config[] | null = null;
  if (configList !== undefined) {
    picked = configList.split(",").map((id) => {
      const c = CONFIGS.find((x) => x.id === id.trim().toLowerCase());
      if (!c) {
        throw new UsageError(
          `--configs: unknown configuration '${id}' (${CONFIGS.map((x) => x.id).join(", ")})`,
        );
      }
      return c;
    });
  }
  const variants = !quick && values["no-variants"] !== true;
  // --configs runs the configurations it names on every chosen scale; by default each scale
  // runs its own (configsOf)
  const rows = scales.flatMap((scale) =>
    (picked ?? configsOf(scale, variants))
      .filter((config) => !scaleOut || isScaleOut(scale, config))
      .map((config) => ({ scale, config })),
  );
  if (rows.length === 0) throw new UsageError("--scale-out: nothing of it is selected");
  return {
    scales: scales.filter((s) => rows.some((r) => r.scale === s)),
    rows,
    pgAsked: scaleOut || (picked?.some((c) => c.pgReplicas !== undefined) ?? false),
    runs: count("runs", quick ? 1 : 3),
    largeRuns: count("large-runs", quick ? 1 : 3),
    retries: str("retries") === "0" ? 0 : count("retries", 2),
    variants,
    profile: values.profile === true,
    out: str("out") ?? "results",
    dataDir: str("data-dir") ?? null,
    keepData: values["keep-data"] === true,
    serverNodeArgs: (str("server-node-args") ?? "").split(" ").filter((a) => a !== ""),
    pgSettings: keyValues("pg-settings", str("pg-settings")),
    serverEnv: keyValues("server-env", str("server-env")),
    agencyNodeArgs: (str("agency-node-args") ?? "").split(" ").filter((a) => a !== ""),
    help: values.help === true,
  };
}

// ------------------------------------------------------------------------------------------

/**
 * The course scale runs the course's own files, unzipped from the repository's
 * .data/dataset.zip into the bench's data folder (null without the archive: generated then).
 */
async function courseFiles(root: string, generated: string[]): Promise<DatasetResult | null> {
  if (!existsSync(COURSE_ZIP)) return null;
  const dir = join(root, "course-files");
  await mkdir(dir, { recursive: true });
  if ((await unzipAgencyFiles(COURSE_ZIP, dir)).length > 0) {
    generated.push(dir);
    process.stdout.write(`  course: the course's files, unzipped from ${COURSE_ZIP}\n`);
  }
  const agencies: AgencyFileResult[] = [];
  for (let agency = 1; agency <= COURSE_BETS.length; agency++) {
    const path = join(dir, `agency-${agency}.csv`);
    if (!existsSync(path)) throw new Error(`${COURSE_ZIP} holds no agency-${agency}.csv`);
    const { rows, winners } = await countAgencyFile(path);
    agencies.push({ agency, path, rows, winners, bytes: statSync(path).size });
  }
  return { seed: 0, crlf: true, out: dir, agencies, total: datasetTotal(agencies) };
}

/** Generates (or reuses) the dataset of a scale; a manifest records what a directory holds. */
async function dataset(root: string, scale: Scale, generated: string[]): Promise<DatasetResult> {
  if (scale.id === "course") {
    const course = await courseFiles(root, generated);
    if (course) return course;
  }
  const dir = join(root, scale.id);
  const manifest = join(dir, "manifest.json");
  const winners = scale.bets.map((_, i) => defaultWinners(i + 1));
  const want = JSON.stringify({ bets: scale.bets, winners, seed: 1 });
  if (existsSync(manifest)) {
    const m = JSON.parse(readFileSync(manifest, "utf8")) as { key: string; result: DatasetResult };
    if (m.key === want && m.result.agencies.every((a) => existsSync(a.path))) return m.result;
  }
  await rm(dir, { recursive: true, force: true });
  generated.push(dir);
  const t = performance.now();
  const result = await generateDataset({
    out: dir,
    agencies: scale.bets.length,
    bets: scale.bets,
    winners,
    seed: 1,
  });
  // flush the new files now: their write-back must not compete with the runs' fdatasyncs
  for (const a of result.agencies) {
    const fh = await open(a.path, "r+");
    await fh.datasync();
    await fh.close();
  }
  await writeFile(manifest, JSON.stringify({ key: want, result }));
  process.stdout.write(
    `  generated ${scale.id}: ${int(result.total.rows)} bets, ${(result.total.bytes / 1e6).toFixed(0)} MB ` +
      `in ${secs(performance.now() - t)} s\n`,
  );
  return result;
}

interface RunSetup {
  data: DatasetResult;
  config: Config;
  /** The agencies run from one load-generator process. */
  fleet: boolean;
  /** The bench's PostgreSQL cluster (configurations with pgReplicas). */
  pg: PgCluster | null;
  profileDir?: string;
  serverNodeArgs: readonly string[];
  agencyNodeArgs: readonly string[];
  serverEnv: Readonly<Record<string, string>>;
  signal?: AbortSignal;
}

let pgDatabases = 0;

async function runOnce(s: RunSetup): Promise<RunRecord> {
  const runDir = await mkdtemp(join(tmpdir(), "quiniela-bench-"));
  const prof = (name: string) =>
    s.profileDir
      ? ["--cpu-prof", "--cpu-prof-dir", s.profileDir, "--cpu-prof-name", `${name}.cpuprofile`]
      : [];
  const replicas = s.config.pgReplicas ?? 1;
  let database: string | null = null;
  try {
    let databaseUrl: string | undefined;
    if (s.config.pgReplicas !== undefined) {
      if (s.pg === null) throw new Error("no PostgreSQL cluster");
      // a fresh database per run; the last run's was dropped and checkpointed away
      database = `bench_${process.pid}_${pgDatabases++}`;
      databaseUrl = await s.pg.createDatabase(database);
    }
    const tls = s.config.tls
      ? mutualTlsEnv(makeCerts({ out: join(runDir, "certs"), agencies: s.data.agencies.length }))
      : { serverEnv: {}, agencyEnv: {} };
    const run = new LotteryRun({
      runDir,
      dataFiles: s.data.agencies.map((a) => a.path),
      replicas,
      databaseUrl,
      fleet: s.fleet,
      sync: s.config.sync,
      window: s.config.window,
      maxAmount: s.config.maxAmount,
      // the server's DEBUG lines are per connection (agency_done gives the draw's start);
      // agencies at INFO, as deployed (their DEBUG logs a line per batch)
      serverLogLevel: "DEBUG",
      agencyLogLevel: "INFO",
      timeoutMs: 900_000,
      sampleMs: 20,
      keepLogs: false,
      serverNodeArgs: [...s.serverNodeArgs, ...prof("server")],
      serverEnv: { ...s.serverEnv, ...tls.serverEnv },
      agencyEnv: tls.agencyEnv,
      agencyNodeArgs: (id) => [...s.agencyNodeArgs, ...(id === 1 ? prof("agency-1") : [])],
      signal: s.signal,
    });
    const pgPid = databaseUrl !== undefined ? (s.pg?.pid() ?? null) : null;
    const pgCpu0 = pgPid === null ? null : treeCpuMs(pgPid);
    const cpu0 = machineBusyS();
    const own0 = process.cpuUsage();
    const r = await run.run();
    const ownUsage = process.cpuUsage(own0);
    const ownCpu = (ownUsage.user + ownUsage.system) / 1e6;
    const busy = machineBusyS() - cpu0;
    const pgCpu1 = pgPid === null ? null : treeCpuMs(pgPid);
    const postgresCpuS = pgCpu0 === null || pgCpu1 === null ? 0 : (pgCpu1 - pgCpu0) / 1000;
    const agencyCpu = r.agencyProcs.reduce((n, p) => n + p.stats.cpuMs, 0);
    const serverCpu = r.servers.reduce((n, x) => n + (x.proc?.stats.cpuMs ?? 0), 0);
    const problems: string[] = [];
    const where = databaseUrl === undefined ? "bets.csv" : "the bets table";
    if (r.failure) {
      // the run was cut short: say why, with the crashed processes' own words, and nothing more
      problems.push(r.failure);
      const crashed = [...r.servers.map((x) => x.proc), ...r.agencyProcs].filter((p) => {
        const e = p?.exit;
        return e && (e.code !== 0 || e.signal !== null) && e.signal !== "SIGTERM";
      });
      for (const p of crashed.slice(0, 3)) {
        problems.push(`${p!.name} (${describeExit(p!.exit)}): ${errorLine(p!.lastLines())}`);
      }
      if (crashed.length > 3) problems.push(`${crashed.length - 3} more processes failed`);
    } else {
      const stored = await countStored(r.storage);
      r.agencies.forEach((a, i) => {
        const gen = s.data.agencies[i]!;
        if (a.exit?.code !== 0)
          problems.push(`agency ${a.id}: exit ${a.exit?.code ?? a.exit?.signal}`);
        if (a.stored !== gen.rows) problems.push(`agency ${a.id}: ${a.stored} bets of ${gen.rows}`);
        if (a.winners !== gen.winners)
          problems.push(`agency ${a.id}: ${a.winners} winners of ${gen.winners}`);
        const st = stored.perAgency.get(a.id);
        if (st?.rows !== gen.rows || st.winners !== gen.winners) {
          problems.push(
            `agency ${a.id}: ${where} holds ${st?.rows ?? 0} rows / ${st?.winners ?? 0} winners`,
          );
        }
        if (stored.drawn !== undefined && (stored.drawn.get(a.id) ?? 0) !== gen.winners) {
          problems.push(`agency ${a.id}: the winners table holds ${stored.drawn.get(a.id) ?? 0}`);
        }
      });
      if (stored.rows !== s.data.total.rows)
        problems.push(`${where}: ${stored.rows} rows of ${s.data.total.rows}`);
      for (const x of r.servers) {
        if (x.exit?.code !== 0) problems.push(`${x.name}: exit ${x.exit?.code ?? x.exit?.signal}`);
      }
      const draws = r.servers.reduce((n, x) => n + x.draws, 0);
      if (draws !== 1) problems.push(`${draws} sorteo lines across the servers`);
    }
    const bets = r.agencies.reduce((n, a) => n + (a.stored ?? 0), 0);
    const last = r.times.lastWinners ?? r.times.allExited;
    const agencyRss = r.agencyProcs.map((p) => p.stats.peakRssKb);
    const serversRss = r.servers.map((x) => mb(x.proc?.stats.peakRssKb ?? 0));
    return {
      ok: problems.length === 0,
      problems,
      bets,
      seconds: last / 1000,
      agenciesSeconds: (last - (r.times.agenciesStarted ?? 0)) / 1000,
      betsPerSecond: Math.round(bets / (last / 1000)),
      serverReadyS: (r.times.serverReady ?? 0) / 1000,
      drawAtS: (r.server.drawAt ?? 0) / 1000,
      ingestS: ((r.server.lastDoneAt ?? 0) - (r.times.agenciesStarted ?? 0)) / 1000,
      agenciesUpS: Math.max(...r.agencies.map((a) => a.upAt ?? 0)) / 1000,
      otherCpuS: Math.max(0, busy - ownCpu - postgresCpuS - (serverCpu + agencyCpu) / 1000),
      drawS: ((r.server.drawAt ?? 0) - (r.server.lastDoneAt ?? r.server.drawAt ?? 0)) / 1000,
      serverPeakRssMb: Math.max(...serversRss),
      serverIngestRssMb: mb(r.server.peakRssBeforeDrawKb ?? 0),
      agency1PeakRssMb: mb(agencyRss[0] ?? 0),
      agencyMaxPeakRssMb: mb(Math.max(...agencyRss)),
      serverCpuS: serverCpu / 1000,
      serverSysS: r.servers.reduce((n, x) => n + (x.proc?.stats.sysMs ?? 0), 0) / 1000,
      agenciesCpuS: agencyCpu / 1000,
      agenciesSysS: r.agencyProcs.reduce((n, p) => n + p.stats.sysMs, 0) / 1000,
      servers: r.servers.length,
      serversPeakRssMb: serversRss,
      postgresCpuS,
    };
  } finally {
    await rm(runDir, { recursive: true, force: true });
    if (database !== null && s.pg !== null) {
      // its files go, and what the run left dirty is written now, not during the next run
      await s.pg.psql(`DROP DATABASE IF EXISTS ${database}`).catch(() => undefined);
      await s.pg.psql("CHECKPOINT").catch(() => undefined);
    }
  }
}

/**
 * A run is disturbed when other programs used more than 10 % of the machine's CPU time during
 * it (the figures then measure the neighbours too).
 */
function disturbed(r: RunRecord): boolean {
  return r.otherCpuS > 0.1 * cpus().length * r.seconds;
}

function report(scale: Scale, config: Config, i: number, r: RunRecord, note: string): void {
  process.stdout.write(
    `  ${scale.id} ${config.name} #${i + 1}: ${r.seconds.toFixed(3)} s, ${int(r.betsPerSecond)} bets/s, ` +
      `ingest ${r.ingestS.toFixed(2)} s, draw ${r.drawS.toFixed(2)} s, ` +
      (r.servers > 1
        ? `servers ${r.serversPeakRssMb.map((x) => x.toFixed(1)).join(" / ")} MB, `
        : `server ${r.serverPeakRssMb.toFixed(1)} MB, `) +
      `agency ${r.agency1PeakRssMb.toFixed(1)} MB, ` +
      `CPU s: servers ${r.serverCpuS.toFixed(2)}, agencies ${r.agenciesCpuS.toFixed(2)}` +
      (r.postgresCpuS > 0 ? `, postgres ${r.postgresCpuS.toFixed(2)}` : "") +
      `, other ${r.otherCpuS.toFixed(2)}${note}` +
      `${r.ok ? "" : `  PROBLEMS: ${r.problems.join("; ")}`}\n`,
  );
}

/** CPU seconds the whole machine has been busy (all CPUs; /proc/stat, USER_HZ = 100). */
function machineBusyS(): number {
  try {
    const line = readFileSync("/proc/stat", "latin1").split("\n", 1)[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    const busy = (v[0] ?? 0) + (v[1] ?? 0) + (v[2] ?? 0) + (v[5] ?? 0) + (v[6] ?? 0) + (v[7] ?? 0);
    return busy / 100;
  } catch {
    return 0;
  }
}

/** The line that says what went wrong (an Error or fatal line), else the last one. */
function errorLine(lines: readonly string[]): string {
  const e = lines.find((l) => /Error\b|^fatal:|CRITICAL/.test(l));
  return (e ?? lines.filter((l) => l.trim() !== "").at(-1) ?? "(no output)").trim();
}

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/** Field-by-field median (the seconds' median run's bets/s is recomputed from it). */
function medianRecord(runs: RunRecord[]): RunRecord {
  const num = (k: keyof RunRecord) => median(runs.map((r) => r[k] as number));
  const seconds = num("seconds");
  const bets = num("bets");
  return {
    ok: runs.every((r) => r.ok),
    problems: runs.flatMap((r) => r.problems),
    bets,
    seconds,
    agenciesSeconds: num("agenciesSeconds"),
    betsPerSecond: Math.round(bets / seconds),
    serverReadyS: num("serverReadyS"),
    drawAtS: num("drawAtS"),
    ingestS: num("ingestS"),
    agenciesUpS: num("agenciesUpS"),
    otherCpuS: num("otherCpuS"),
    drawS: num("drawS"),
    serverPeakRssMb: num("serverPeakRssMb"),
    serverIngestRssMb: num("serverIngestRssMb"),
    agency1PeakRssMb: num("agency1PeakRssMb"),
    agencyMaxPeakRssMb: num("agencyMaxPeakRssMb"),
    serverCpuS: num("serverCpuS"),
    serverSysS: num("serverSysS"),
    agenciesCpuS: num("agenciesCpuS"),
    agenciesSysS: num("agenciesSysS"),
    servers: runs[0]?.servers ?? 1,
    // server by server
    serversPeakRssMb: (runs[0]?.serversPeakRssMb ?? []).map((_, i) =>
      median(runs.map((r) => r.serversPeakRssMb[i] ?? 0)),
    ),
    postgresCpuS: num("postgresCpuS"),
  };
}

function machine() {
  // outside a git checkout (e.g. an exported tree), QUINIELA_COMMIT names the source
  let commit = process.env.QUINIELA_COMMIT ?? "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      encoding: "utf8",
      stdio: "pipe",
    }).trim();
  } catch {
    // not a git checkout
  }
  const c = cpus();
  return {
    cpus: c.length,
    cpuModel: c[0]?.model ?? "unknown",
    memoryGb: Math.round(totalmem() / 1e9),
    os: `${platform()} ${release()}`,
    node: process.version,
    commit,
    date: new Date().toISOString(),
  };
}

const HEAD = [
  "scale",
  "configuration",
  "bets",
  "runs",
  "seconds",
  "bets/s",
  "ingest s",
  "draw s",
  "server RSS MB (ingest)",
  "agency RSS MB (max)",
  "server CPU s (sys)",
  "agencies CPU s (sys)",
  "postgres CPU s",
  "other CPU s",
];

function rowOf(r: ScenarioResult): string[] {
  const m = r.median;
  const okRuns = r.runs.filter((x) => x.ok).length;
  const writes =
    r.store === "postgres"
      ? `${r.replicas === 1 ? "1 server" : `${r.replicas} replicas`} + PostgreSQL (durable commits)`
      : r.sync;
  const cfg =
    `w${r.window}, ${writes}${r.maxAmount === "default" ? "" : `, max-amount ${r.maxAmount}`}` +
    (r.fleet ? ", one load generator" : "") +
    (r.tls ? ", mutual TLS" : "");
  // every server's peak when there are several
  const rss =
    m.serversPeakRssMb.length > 1
      ? `${m.serversPeakRssMb.map((x) => x.toFixed(1)).join(" / ")} (${m.serverIngestRssMb.toFixed(1)})`
      : `${m.serverPeakRssMb.toFixed(1)} (${m.serverIngestRssMb.toFixed(1)})`;
  return [
    r.scale,
    cfg,
    r.bets % r.agencies === 0
      ? `${r.agencies} × ${int(r.bets / r.agencies)}`
      : `${int(r.bets)} (${r.agencies} ag.)`,
    okRuns === r.runs.length ? String(r.runs.length) : `${okRuns} ok of ${r.runs.length}`,
    m.seconds.toFixed(3),
    int(sig3(m.betsPerSecond)),
    m.ingestS.toFixed(3),
    m.drawS.toFixed(3),
    rss,
    `${m.agency1PeakRssMb.toFixed(1)} (${m.agencyMaxPeakRssMb.toFixed(1)})`,
    `${m.serverCpuS.toFixed(2)} (${m.serverSysS.toFixed(2)})`,
    `${m.agenciesCpuS.toFixed(2)} (${m.agenciesSysS.toFixed(2)})`,
    r.store === "postgres" ? m.postgresCpuS.toFixed(2) : "-",
    m.otherCpuS.toFixed(2),
  ];
}

const ALIGN = ["left", "left", ...Array<"right">(HEAD.length - 2).fill("right")] as const;

export async function main(argv: readonly string[]): Promise<number> {
  let o: BenchOptions;
  try {
    o = parseCli(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`bench: ${e.message}\nTry 'bench --help'.\n`);
    return 2;
  }
  if (o.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const notBuilt = checkBuilt();
  if (notBuilt) {
    process.stderr.write(`bench: ${notBuilt}\n`);
    return 1;
  }
  // PostgreSQL rows need the machine's PostgreSQL 15: an error when asked for by name,
  // otherwise those rows are left out with a note
  const pgMissing = o.rows.some((r) => r.config.pgReplicas !== undefined)
    ? pgClusterUnavailable()
    : null;
  if (pgMissing !== null) {
    if (o.pgAsked) {
      process.stderr.write(`bench: ${pgMissing}\n`);
      return 1;
    }
    process.stdout.write(`bench: leaving out the PostgreSQL rows: ${pgMissing}\n`);
    o.rows = o.rows.filter((r) => r.config.pgReplicas === undefined);
    o.scales = o.scales.filter((s) => o.rows.some((r) => r.scale === s));
  }
  const m = machine();
  process.stdout.write(
    `bench: ${m.cpus} × ${m.cpuModel}, node ${m.node}, ${m.os}, commit ${m.commit}\n` +
      `scales: ${o.scales.map((s) => s.id).join(", ")}; variants: ${o.variants ? "yes" : "no"}` +
      `; rows: ${o.rows.map((r) => `${r.scale.id} ${r.config.id}`).join(", ")}\n`,
  );
  // Ctrl-C: the running lottery stops its processes, the PostgreSQL cluster is stopped
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`\nbench: ${sig}: stopping\n`);
    ac.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  stopWhenOutputGone("bench", () => ac.abort());
  let pg: PgCluster | null = null;
  let pgDir: string | null = null;
  const pgSettings = { ...THROWAWAY_PG_SETTINGS, ...o.pgSettings };
  const dataRoot = o.dataDir ? resolve(o.dataDir) : join(tmpdir(), "quiniela-bench-data");
  await mkdir(dataRoot, { recursive: true });
  const generatedDirs: string[] = [];
  await mkdir(o.out, { recursive: true });
  const nodeArgs = {
    serverNodeArgs: o.serverNodeArgs,
    serverEnv: o.serverEnv,
    agencyNodeArgs: o.agencyNodeArgs,
    signal: ac.signal,
  };
  const results: ScenarioResult[] = [];
  let failed = false;
  const profiles: string[] = [];
  try {
    for (const scale of o.scales) {
      if (ac.signal.aborted) break;
      const data = await dataset(dataRoot, scale, generatedDirs);
      const fleet = scale.fleet === true;
      const configs = o.rows.filter((r) => r.scale === scale).map((r) => r.config);
      for (const config of configs) {
        if (ac.signal.aborted) break;
        if (config.pgReplicas !== undefined && pg === null) {
          pgDir = await mkdtemp(join(tmpdir(), "quiniela-bench-pg-"));
          const t = performance.now();
          pg = await startPgCluster({ dir: join(pgDir, "pg"), settings: pgSettings });
          process.stdout.write(
            `  started a throwaway PostgreSQL 15 cluster on 127.0.0.1:${pg.port} in ` +
              `${secs(performance.now() - t)} s (${pgDir})\n`,
          );
        }
        const setup = { data, config, fleet, pg, ...nodeArgs };
        const n = scale.small ? o.runs : o.largeRuns;
        const runs: RunRecord[] = [];
        for (let i = 0; i < n && !ac.signal.aborted; i++) {
          let r = await runOnce(setup);
          // another program competed for the CPUs: run again (up to --retries times) and keep
          // the least disturbed attempt
          let attempt = r;
          for (let k = 0; attempt.ok && disturbed(attempt) && k < o.retries; k++) {
            report(scale, config, i, attempt, " (disturbed by other programs: running it again)");
            attempt = await runOnce(setup);
            if (!attempt.ok || attempt.otherCpuS < r.otherCpuS) r = attempt;
          }
          const note =
            attempt !== r
              ? ` (an earlier attempt is kept: other CPU ${r.otherCpuS.toFixed(2)} s)`
              : disturbed(r)
                ? " (kept: the least disturbed)"
                : "";
          report(scale, config, i, attempt, note);
          if (ac.signal.aborted) break;
          runs.push(r);
          if (!r.ok) failed = true;
        }
        if (runs.length === 0) break;
        results.push({
          scale: scale.id,
          config: config.name,
          store: config.pgReplicas === undefined ? "file" : "postgres",
          replicas: config.pgReplicas ?? 1,
          fleet,
          tls: config.tls === true,
          agencies: scale.bets.length,
          bets: data.total.rows,
          window: config.window,
          sync: config.sync,
          maxAmount: config.maxAmount ?? "default",
          runs,
          median: medianRecord(runs.some((r) => r.ok) ? runs.filter((r) => r.ok) : runs),
        });
      }
      if (o.profile && !ac.signal.aborted) {
        const dir = resolve(o.out, "profile", scale.id);
        await rm(dir, { recursive: true, force: true });
        await mkdir(dir, { recursive: true });
        const r = await runOnce({
          data,
          config: BASE,
          fleet,
          pg: null,
          profileDir: dir,
          ...nodeArgs,
        });
        process.stdout.write(
          `  ${scale.id} profiled run: ${r.seconds.toFixed(3)} s (profiles in ${dir})\n`,
        );
        let md = `## Profile: ${scale.id}, base configuration (${r.seconds.toFixed(3)} s with profiling)\n\n`;
        for (const name of ["server", "agency-1"]) {
          const f = join(dir, `${name}.cpuprofile`);
          if (existsSync(f)) md += `${renderProfile(name, summarizeProfile(loadProfile(f)))}\n`;
        }
        await writeFile(join(dir, "summary.md"), md);
        profiles.push(md);
      }
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    // datasets generated by this run go, unless kept; ones kept by an earlier run stay
    if (!o.keepData) for (const d of generatedDirs) await rm(d, { recursive: true, force: true });
    await pg?.stop();
    if (pgDir !== null) await rm(pgDir, { recursive: true, force: true });
  }
  if (ac.signal.aborted) {
    process.stderr.write("bench: interrupted; nothing written\n");
    return 130;
  }

  const rows = [HEAD, ...results.map(rowOf)];
  process.stdout.write(`\n${table(rows, ALIGN)}`);
  const json = {
    machine: m,
    nodeArgs: { serverNodeArgs: o.serverNodeArgs, agencyNodeArgs: o.agencyNodeArgs },
    ...(Object.keys(o.serverEnv).length > 0 ? { serverEnv: o.serverEnv } : {}),
    ...(results.some((r) => r.store === "postgres") ? { pgSettings } : {}),
    results,
  };
  await writeFile(join(o.out, "bench.json"), `${JSON.stringify(json, null, 2)}\n`);
  let md = `# Benchmark\n\n${m.cpus} × ${m.cpuModel}, ${m.memoryGb} GB, ${m.os}, node ${m.node}, commit ${m.commit}, ${m.date}\n\n`;
  md += markdownTable(rows, ALIGN);
  md +=
    "\nseconds: from starting the server to the last agency's winners (median of the runs); " +
    "bets/s = bets / seconds; ingest s: from starting the agencies to the last agency's DONE; " +
    "draw s: from then to the draw (`sorteo`); server RSS: peak (VmHWM) and, in parentheses, the peak " +
    "before the draw (with several replicas: each server's peak, and the largest peak before the draw); " +
    "agency RSS: agency 1 (the largest of all; one load generator: that process); CPU: user+system " +
    "(system), of all servers together; postgres CPU: the PostgreSQL cluster's processes; " +
    "other CPU: CPU time used meanwhile by other programs on the machine.\n";
  if (profiles.length > 0) md += `\n${profiles.join("\n")}`;
  await writeFile(join(o.out, "bench.md"), md);
  await writeFile(join(o.out, "bench.svg"), benchChart(json));
  process.stdout.write(
    `\nwrote ${join(o.out, "bench.json")}, ${join(o.out, "bench.md")} and ${join(o.out, "bench.svg")}\n`,
  );
  if (failed) process.stderr.write("bench: some runs had problems (see above)\n");
  return failed ? 1 : 0;
}

if (isMain(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
