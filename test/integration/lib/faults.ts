// Fault-injection helpers for the reliability tests (crash, faults, fuzz-live, load): a seeded
// PRNG, free ports outside the ephemeral range, hard kills, line counting, a raw protocol client,
// a fault-injecting TCP proxy, the python3 multiset check of the stored bets, and an RSS sampler.

import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { ErrorCode, isFault } from "../../../shared/src/errors.js";
import { FrameDecoder } from "../../../shared/src/protocol/decoder.js";
import { FLAG_MORE, type Frame, HEADER_SIZE, MsgType } from "../../../shared/src/protocol/frame.js";
import {
  decodeFaultReply,
  decodeWelcome,
  decodeWinners,
  encodeDone,
  encodeHello,
  encodeWinnersRequest,
  type Welcome,
} from "../../../shared/src/protocol/messages.js";
import { type Proc, run, SERVER_JS, type ServerProc } from "./procs.js";

// ------------------------------------------------------------------------------ randomness

/** mulberry32: a tiny seeded PRNG returning floats in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [lo, hi] (both inclusive). */
export function int(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

export function pick<T>(r: () => number, items: readonly T[]): T {
  return items[Math.floor(r() * items.length)]!;
}

/** Mixes two integers into a new seed (for per-connection / per-run streams). */
export function mix(a: number, b: number): number {
  let h = (Math.imul(a >>> 0, 0x9e3779b1) ^ Math.imul(b >>> 0, 0x85ebca77)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Seeds to run: env `name` alone (replay one run) or `count` seeds from `base`. */
export function seedsFrom(name: string, base: number, count: number): number[] {
  const one = process.env[name];
  if (one !== undefined && one !== "") return [Number(one)];
  return Array.from({ length: count }, (_, i) => base + i);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------ ports & processes

/**
 * A free loopback port below the kernel's ephemeral range. A restarted server must get the same
 * port back; inside the ephemeral range an agency retrying against the dead port can end up
 * connected to itself (TCP simultaneous open) and hold the port, or another process can take it.
 */
export async function freePort(): Promise<number> {
  let low = 32768;
  try {
    low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").split(/\s+/)[0]);
  } catch {
    // keep the Linux default
  }
  const lo = Math.max(10_000, low - 12_000);
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = lo + Math.floor(Math.random() * (low - lo));
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen({ port, host: "127.0.0.1", exclusive: true }, () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error("no free port below the ephemeral range");
}

const LISTENING = /action: accept_connections \| result: in_progress \| port: (\d+)/;

/** Spawns the server on a fixed port without waiting for it to listen. */
export function spawnServer(port: number, env: Record<string, string>, dir: string): Proc {
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
    const listening = p.waitFor(LISTENING, 30_000).then(() => true);
    const exited = p.exited.then(() => false);
    if (await Promise.race([listening, exited])) return Object.assign(p, { port, dir });
    // EADDRINUSE right after a kill: the old listener may not be fully gone yet
    if (attempt >= 5 || !/EADDRINUSE/.test(p.stderr)) {
      throw new Error(`server did not start on port ${port}: ${p.stderr}\n${p.lines.join("\n")}`);
    }
    await sleep(200);
  }
}

export function alive(p: Proc): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

/** kill -9 (by the child's PID) and wait for it to be gone. */
export async function killHard(p: Proc): Promise<void> {
  if (alive(p)) p.child.kill("SIGKILL");
  await p.exited;
}

/** Kills (SIGKILL) every process of the list that is still running; for `finally` blocks. */
export async function reap(procs: readonly Proc[]): Promise<void> {
  await Promise.all(procs.map((p) => killHard(p)));
}

/** Number of log lines of `p` matching `re`. */
export function count(p: Proc, re: RegExp): number {
  let n = 0;
  for (const l of p.lines) if (re.test(l)) n++;
  return n;
}

/**
 * Resolves once `p` has logged `n` lines matching `re`, or `stop()` turns true, or `p` exited;
 * rejects after `timeoutMs` (a hang guard). Resolves with the number of matching lines.
 */
export function waitCount(
  p: Proc,
  re: RegExp,
  n: number,
  timeoutMs: number,
  stop: () => boolean = () => false,
): Promise<number> {
  return new Promise((resolve, reject) => {
    let seen = 0;
    let scanned = 0;
    const check = (): boolean => {
      for (; scanned < p.lines.length; scanned++) if (re.test(p.lines[scanned]!)) seen++;
      if (seen >= n || stop() || !alive(p)) {
        finish();
        resolve(seen);
        return true;
      }
      return false;
    };
    const onData = () => setImmediate(check);
    const timer = setInterval(check, 20);
    const guard = setTimeout(() => {
      finish();
      reject(new Error(`hang guard: ${seen}/${n} lines matching ${re} after ${timeoutMs}ms`));
    }, timeoutMs);
    const finish = () => {
      clearInterval(timer);
      clearTimeout(guard);
      p.child.stdout?.off("data", onData);
    };
    p.child.stdout?.on("data", onData);
    check();
  });
}

/** Rejects after `ms` with `what()` (evaluated then: logs as they are at the timeout). */
export function guard<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`hang guard after ${ms}ms: ${what()}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(t));
}

// ------------------------------------------------------------------------------ raw protocol client

/** A bare protocol connection for probing the server: send frames, read reply frames. */
export class RawClient {
  readonly frames: Frame[] = [];
  readonly closed: Promise<void>;
  private readonly decoder = new FrameDecoder();
  private waiters: Array<() => void> = [];
  private seq = 0;
  isClosed = false;
  protocolFault: string | null = null;

  private constructor(readonly socket: Socket) {
    socket.on("data", (c: Buffer) => {
      this.decoder.push(c);
      for (;;) {
        const f = this.decoder.next();
        if (f === null) break;
        if (isFault(f)) {
          this.protocolFault = f.reason;
          socket.destroy();
          break;
        }
        const fr = f as Frame;
        this.frames.push({ ...fr, payload: Buffer.from(fr.payload) });
      }
      this.wake();
    });
    socket.on("error", () => undefined);
    this.closed = new Promise((resolve) =>
      socket.on("close", () => {
        this.isClosed = true;
        this.wake();
        resolve();
      }),
    );
  }

  static connect(port: number, host = "127.0.0.1"): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = createConnection({ port, host, noDelay: true });
      s.once("error", reject);
      s.once("connect", () => {
        s.off("error", reject);
        resolve(new RawClient(s));
      });
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  nextSeq(): number {
    this.seq++;
    return this.seq;
  }

  send(buf: Buffer): void {
    this.socket.write(buf);
  }

  /** Waits until `cond()` holds or the connection closed; rejects after `timeoutMs`. */
  async until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond() && !this.isClosed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("hang guard: no reply from the server");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Sends one request and returns its reply frames (a WINNERS reply may span several). */
  async request(frame: Buffer, timeoutMs = 10_000): Promise<Frame[]> {
    const seq = frame.readUInt32BE(4);
    const start = this.frames.length;
    this.send(frame);
    const complete = () => {
      const mine = this.frames.slice(start);
      const err = mine.find((f) => f.type === MsgType.ERROR);
      if (err) return true;
      const last = mine[mine.length - 1];
      return last !== undefined && last.seq === seq && (last.flags & FLAG_MORE) === 0;
    };
    await this.until(complete, timeoutMs);
    const mine = this.frames.slice(start);
    if (!complete()) throw new Error(`connection closed without a reply to seq ${seq}`);
    return mine;
  }

  async hello(agency: number, secret = ""): Promise<Welcome> {
    const seq = this.nextSeq();
    const [f] = await this.request(encodeHello(seq, { agency, secret }));
    if (f!.type !== MsgType.WELCOME) throw new Error(`HELLO answered with ${describeFrame(f!)}`);
    const w = decodeWelcome(f!.payload);
    if (isFault(w)) throw new Error(w.reason);
    return w;
  }

  async done(total: number): Promise<Frame> {
    const seq = this.nextSeq();
    const [f] = await this.request(encodeDone(seq, total));
    return f!;
  }

  /**
   * WINNERS_REQUEST: the documents, or null when the draw has not happened (`wait` false), or
   * the documents once the draw happened (`wait` true; bounded by `timeoutMs`).
   */
  async winners(wait = false, timeoutMs = 10_000): Promise<string[] | null> {
    const seq = this.nextSeq();
    const frames = await this.request(encodeWinnersRequest(seq, wait), timeoutMs);
    if (frames[0]!.type === MsgType.NOT_READY) return null;
    const out: string[] = [];
    for (const f of frames) {
      if (f.type !== MsgType.WINNERS) throw new Error(`expected WINNERS, got ${describeFrame(f)}`);
      const w = decodeWinners(f.payload);
      if (isFault(w)) throw new Error(w.reason);
      out.push(...w);
    }
    return out;
  }

  async close(): Promise<void> {
    this.socket.end();
    const t = setTimeout(() => this.socket.destroy(), 2000);
    await this.closed;
    clearTimeout(t);
  }
}

const TYPE_NAMES = new Map<number, string>(Object.entries(MsgType).map(([k, v]) => [v, k]));

export function describeFrame(f: Frame): string {
  const name = TYPE_NAMES.get(f.type) ?? `type ${f.type}`;
  if (f.type === MsgType.ERROR || f.type === MsgType.REJECT) {
    const r = decodeFaultReply(f.payload);
    if (!isFault(r)) {
      const code = Object.entries(ErrorCode).find(([, v]) => v === r.code)?.[0] ?? r.code;
      return `${name} ${code}: ${r.reason}`;
    }
  }
  return name;
}

// ------------------------------------------------------------------------------ stored bets

export interface StoredCheck {
  equal: boolean;
  /** Rows in the stored file. */
  rows: number;
  /** Rows of the inputs. */
  expected: number;
  /** Bets of the inputs missing from the store (multiset difference), and extra stored ones. */
  missing: number;
  extra: number;
  /** A few differing rows, for the failure message. */
  sample: string[];
  /** Per agency (1-based order of `inputs`), the documents of the winning rows of the inputs. */
  winners: string[][];
  /** Per agency, the number of bets of the inputs. */
  bets: number[];
}

const PY_COMPARE = `
import csv, collections, json, sys
stored, inputs, only = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
got = collections.Counter()
rows = 0
try:
    with open(stored, newline='', encoding='utf-8') as f:
        for row in csv.reader(f):
            rows += 1
            if not only or row[0] in only:
                got[tuple(row)] += 1
except FileNotFoundError:
    pass
want = collections.Counter()
winners, bets = [], []
for a, path in enumerate(inputs, 1):
    docs, n = [], 0
    with open(path, newline='', encoding='utf-8') as f:
        for r in csv.reader(f):
            if not r:
                continue
            n += 1
            want[(str(a), r[0], r[1], r[2], r[3], str(int(r[4])))] += 1
            if int(r[4]) == 7574:
                docs.append(r[2])
    winners.append(sorted(docs))
    bets.append(n)
missing = want - got
extra = got - want
sample = ['missing %dx %s' % (c, ','.join(k)) for k, c in list(missing.items())[:3]]
sample += ['extra %dx %s' % (c, ','.join(k)) for k, c in list(extra.items())[:3]]
print(json.dumps({"equal": got == want, "rows": rows, "expected": sum(want.values()),
  "missing": sum(missing.values()), "extra": sum(extra.values()), "sample": sample,
  "winners": winners, "bets": bets}))
`;

/**
 * Reads the stored bets with python3's csv module and compares them, as a multiset of
 * (agency, fields..., int(number)), with the agencies' input files (agency N = inputs[N-1]).
 * `onlyAgencies` restricts the stored rows compared (others, e.g. a test's own agencies, are
 * ignored but still counted in `rows`).
 */
export function compareStored(
  stored: string,
  inputs: readonly string[],
  onlyAgencies: readonly number[] = [],
): StoredCheck {
  const r = spawnSync(
    "python3",
    ["-c", PY_COMPARE, stored, JSON.stringify(inputs), JSON.stringify(onlyAgencies.map(String))],
    { encoding: "utf8", maxBuffer: 64 << 20 },
  );
  if (r.status !== 0) throw new Error(`python3 compare failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as StoredCheck;
}

/** The documents an agency logged as its winners (needs CLI_LOG_LEVEL=DEBUG), sorted. */
export function loggedWinners(p: Proc): string[] | null {
  const line = p.lines.find((l) => l.includes("action: ganadores | result: success"));
  if (!line) return null;
  const m = /documentos: ?(.*)$/.exec(line);
  const docs = (m?.[1] ?? "").trim();
  return docs === "" ? [] : docs.split(" ").sort();
}

export function loggedWinnerCount(p: Proc): number | null {
  const m = /action: consulta_ganadores \| result: success \| cant_ganadores: (\d+)/.exec(
    p.lines.find((l) => l.includes("action: consulta_ganadores | result: success")) ?? "",
  );
  return m ? Number(m[1]) : null;
}

/**
 * Known failure pattern, spelled out for the hang message: an agency whose connection dropped
 * after its last bet was acknowledged reconnects, the server says OPEN with every bet committed,
 * and the agency asks for its winners without sending DONE again (the draw then never happens).
 */
export function diagnoseAgencies(agencies: readonly Proc[], bets: readonly number[]): string {
  const out: string[] = [];
  agencies.forEach((a, i) => {
    if (!alive(a)) return;
    let lastOpenAll = -1;
    a.lines.forEach((l, k) => {
      const m = /action: connect \| result: success .*committed: (\d+) \| state: 0/.exec(l);
      if (m && Number(m[1]) === bets[i]) lastOpenAll = k;
    });
    if (lastOpenAll < 0) return;
    const after = a.lines.slice(lastOpenAll + 1);
    if (!after.some((l) => l.includes("action: notificar_fin"))) {
      out.push(
        `agency ${i + 1}: reconnected with state OPEN and all ${bets[i]} bets committed, then never sent DONE again (waits for a draw that needs its DONE)`,
      );
    }
  });
  return out.length ? `\nDIAGNOSIS: ${out.join("; ")}` : "";
}

/** Everything about a process worth printing when an assertion fails. */
export function tail(p: Proc, n = 15): string {
  return `${p.lines.slice(-n).join("\n")}\n${p.stderr}${alive(p) ? threadStates(p.child.pid) : ""}`;
}

/** Where the threads of a live process wait in the kernel (tells a stuck fsync from a bug). */
export function threadStates(pid: number | undefined): string {
  if (pid === undefined) return "";
  try {
    const waits = new Map<string, number>();
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8");
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      let wchan = "";
      try {
        wchan = readFileSync(`/proc/${pid}/task/${t}/wchan`, "utf8");
      } catch {
        wchan = "?";
      }
      const k = `${state}:${wchan || "-"}`;
      waits.set(k, (waits.get(k) ?? 0) + 1);
    }
    return `[pid ${pid} threads: ${[...waits].map(([k, n]) => `${n}x ${k}`).join(", ")}]`;
  } catch {
    return "";
  }
}

// ------------------------------------------------------------------------------ fault proxy

export type FaultKind =
  | "pass"
  | "cut_up" // forward exactly N client->server bytes, then close both sides
  | "cut_down" // forward exactly N server->client bytes, then close both sides
  | "reset" // after N client->server bytes, reset both sides (RST)
  | "stall_up" // after N client->server bytes, hold that direction for a while
  | "stall_down" // after N server->client bytes, hold that direction for a while
  | "drop_timed" // close both sides after T ms, wherever the bytes are
  | "cut_up_record"; // TLS: cut the client's N-th big application-data record halfway, close

export interface FaultPlan {
  kind: FaultKind;
  /** Byte offset (cut/reset/stall), or ms for drop_timed. */
  at: number;
  /** Stall length in ms. */
  stallMs: number;
}

/**
 * A targeted cut, whatever connection it happens on: the `skip+1`-th frame of `frameType` sent
 * by `agency` is cut `offset` bytes after its start (clamped inside the frame, after its type).
 */
export interface FrameTarget {
  agency: number;
  frameType: number;
  skip: number;
  offset: number;
  /** Set when the cut happened. */
  fired?: boolean;
}

export interface ProxyConnInfo {
  index: number;
  plan: FaultPlan;
  agency: number;
  up: number;
  down: number;
  fired: boolean;
}

/** Watches a client->server byte stream frame by frame: knows each frame's start and type. */
class FrameWatch {
  private frameStart = 0;
  private header = Buffer.alloc(HEADER_SIZE);
  private headerLen = 0;
  private frameLen = -1;
  private firstPayload: number[] = [];
  agency = 0;
  private first = true;

  /** Feeds bytes starting at absolute offset `base`; calls `onFrame(start, type, len)`. */
  feed(chunk: Buffer, base: number, onFrame: (start: number, type: number, len: number) => void) {
    let i = 0;
    while (i < chunk.length) {
      const abs = base + i;
      if (this.frameLen < 0) {
        this.header[this.headerLen++] = chunk[i]!;
        i++;
        if (this.headerLen === HEADER_SIZE) {
          const len = this.header.readUInt32BE(8);
          this.frameLen = HEADER_SIZE + len;
          if (this.header[0] !== 0xfa || len > 8192) {
            this.frameLen = Number.POSITIVE_INFINITY; // not our protocol: stop watching
          }
          onFrame(this.frameStart, this.header[2]!, this.frameLen);
        }
        continue;
      }
      const end = this.frameStart + this.frameLen;
      const take = Math.min(chunk.length - i, end - abs);
      if (this.first && this.header[2] === MsgType.HELLO) {
        for (let k = 0; k < take && this.firstPayload.length < 4; k++) {
          this.firstPayload.push(chunk[i + k]!);
        }
        if (this.firstPayload.length === 4) {
          this.agency = Buffer.from(this.firstPayload).readUInt32BE(0);
        }
      }
      i += take;
      if (base + i === end) {
        this.first = false;
        this.frameStart = end;
        this.headerLen = 0;
        this.frameLen = -1;
      }
    }
  }
}

/** Watches a client->server TLS byte stream record by record (5-byte header: type, version, length). */
class TlsRecordWatch {
  private next = 0; // absolute offset of the next record header
  private header: number[] = [];

  /** Feeds bytes starting at absolute offset `base`; calls `onRecord(start, type, len)`. */
  feed(chunk: Buffer, base: number, onRecord: (start: number, type: number, len: number) => void) {
    let i = Math.max(0, this.next - base);
    while (i < chunk.length) {
      this.header.push(chunk[i]!);
      i++;
      if (this.header.length < 5) continue;
      const len = (this.header[3]! << 8) | this.header[4]!;
      onRecord(this.next, this.header[0]!, len);
      this.next += 5 + len;
      this.header = [];
      i = this.next - base;
    }
  }
}

/** TLS record type of application data (what the protocol's frames travel in). */
const TLS_APPLICATION_DATA = 0x17;
/**
 * TLS 1.3 sends the client's certificate and Finished in application-data records too; those
 * (and HELLO, DONE) are smaller than this, a BATCH of the agency is larger.
 */
const TLS_BIG_RECORD = 1024;

/**
 * A TCP proxy between agencies and the server that injects one planned fault per connection.
 * `planFor(index, r)` decides the fault of the index-th connection with its own seeded stream.
 */
export class FaultProxy {
  readonly conns: ProxyConnInfo[] = [];
  private readonly sockets = new Set<Socket>();
  private server: Server | null = null;
  port = 0;

  private readonly seen = new Map<string, number>();

  constructor(
    private readonly targetPort: number,
    private readonly seed: number,
    private readonly planFor: (index: number, r: () => number) => FaultPlan,
    readonly targets: FrameTarget[] = [],
  ) {}

  async listen(): Promise<number> {
    this.server = createServer((c) => this.onConnection(c));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const a = this.server.address();
    this.port = typeof a === "object" && a ? a.port : 0;
    return this.port;
  }

  /** Faults that actually fired, by kind. */
  summary(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const c of this.conns) {
      const k = c.fired || c.plan.kind === "pass" ? c.plan.kind : `${c.plan.kind}(not reached)`;
      out[k] = (out[k] ?? 0) + 1;
    }
    for (const t of this.targets) {
      const k = `cut_in_${TYPE_NAMES.get(t.frameType) ?? t.frameType}${t.fired ? "" : "(not reached)"}`;
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }

  private onConnection(c: Socket): void {
    const index = this.conns.length;
    const plan = this.planFor(index, rng(mix(this.seed, index)));
    const info: ProxyConnInfo = { index, plan, agency: 0, up: 0, down: 0, fired: false };
    this.conns.push(info);
    const s = createConnection({ port: this.targetPort, host: "127.0.0.1", noDelay: true });
    c.setNoDelay(true);
    this.sockets.add(c);
    this.sockets.add(s);
    let dead = false;
    const timers: NodeJS.Timeout[] = [];
    const kill = (how: "close" | "reset") => {
      if (dead) return;
      dead = true;
      for (const t of timers) clearTimeout(t);
      for (const sock of [c, s]) {
        if (how === "reset" && !sock.destroyed) sock.resetAndDestroy();
        else sock.destroy();
      }
    };
    for (const sock of [c, s]) {
      sock.on("error", () => kill("close"));
      sock.on("close", () => {
        this.sockets.delete(sock);
        const other = sock === c ? s : c;
        // let what was already written to the other side go out, then close it
        if (!dead) {
          dead = true;
          other.end();
          setTimeout(() => other.destroy(), 2000).unref();
        }
      });
    }
    s.on("end", () => c.end());
    c.on("end", () => s.end());
    if (plan.kind === "drop_timed") {
      timers.push(
        setTimeout(() => {
          info.fired = true;
          kill("close");
        }, plan.at),
      );
    }
    const watch = new FrameWatch();
    const records = new TlsRecordWatch();
    let appRecords = 0;

    const direction = (from: Socket, to: Socket, up: boolean) => {
      let sent = 0;
      let received = 0;
      let cutAt = -1;
      let cutHow: "close" | "reset" = "close";
      let stallAt = -1;
      let stalled = false;
      const held: Buffer[] = [];
      if (up && plan.kind === "cut_up") cutAt = plan.at;
      // cut_up_record: set once the record is seen (below)
      if (up && plan.kind === "reset") {
        cutAt = plan.at;
        cutHow = "reset";
      }
      if (!up && plan.kind === "cut_down") cutAt = plan.at;
      if ((up && plan.kind === "stall_up") || (!up && plan.kind === "stall_down")) {
        stallAt = plan.at;
      }
      const forward = (chunk: Buffer): void => {
        if (dead || chunk.length === 0) return;
        if (stalled) {
          held.push(chunk);
          return;
        }
        if (cutAt >= 0 && sent + chunk.length >= cutAt) {
          const part = chunk.subarray(0, cutAt - sent);
          sent += part.length;
          info.fired = true;
          if (cutHow === "reset") {
            if (part.length > 0) to.write(part);
            // give the partial bytes a moment to leave, then RST both ways
            setImmediate(() => kill("reset"));
          } else {
            dead = true;
            to.end(part);
            from.destroy();
            setTimeout(() => to.destroy(), 2000).unref();
          }
          return;
        }
        if (stallAt >= 0 && sent + chunk.length > stallAt) {
          const part = chunk.subarray(0, stallAt - sent);
          held.push(chunk.subarray(stallAt - sent));
          if (part.length > 0) to.write(part);
          sent += part.length;
          stallAt = -1;
          stalled = true;
          info.fired = true;
          from.pause();
          timers.push(
            setTimeout(() => {
              stalled = false;
              const rest = held.splice(0);
              for (const b of rest) forward(b);
              if (!dead) from.resume();
            }, plan.stallMs),
          );
          return;
        }
        sent += chunk.length;
        if (up) info.up = sent;
        else info.down = sent;
        if (!to.write(chunk)) {
          from.pause();
          to.once("drain", () => {
            if (!stalled && !dead) from.resume();
          });
        }
      };
      from.on("data", (chunk: Buffer) => {
        const base = received;
        received += chunk.length;
        if (up && plan.kind === "cut_up_record") {
          records.feed(chunk, base, (start, type, len) => {
            if (type !== TLS_APPLICATION_DATA || len < TLS_BIG_RECORD || cutAt >= 0) return;
            if (appRecords++ === plan.at) cutAt = start + 5 + Math.floor(len / 2);
          });
        } else if (up) {
          watch.feed(chunk, base, (start, type, len) => {
            const agency = watch.agency;
            if (agency === 0 || cutAt >= 0 || !Number.isFinite(len)) return;
            const key = `${agency}/${type}`;
            const nth = this.seen.get(key) ?? 0;
            this.seen.set(key, nth + 1);
            for (const t of this.targets) {
              if (t.fired || t.agency !== agency || t.frameType !== type || t.skip !== nth)
                continue;
              t.fired = true;
              cutAt = start + Math.min(Math.max(3, t.offset), len - 1);
              break;
            }
          });
          info.agency = watch.agency;
        }
        forward(chunk);
      });
    };
    direction(c, s, true);
    direction(s, c, false);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }
}

// ------------------------------------------------------------------------------ memory

export interface RssReport {
  /** Largest VmRSS seen while sampling, and the kernel's VmHWM at the last sample (kB). */
  peakRssKb: number;
  hwmKb: number;
  samples: number;
}

function statusKb(pid: number, key: string): number {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Samples /proc/<pid>/status every `everyMs` until `stop()` (which returns the figures). */
export function sampleRss(pid: number, everyMs = 100): { peek(): RssReport; stop(): RssReport } {
  const report: RssReport = { peakRssKb: 0, hwmKb: 0, samples: 0 };
  const take = () => {
    const rss = statusKb(pid, "VmRSS");
    const hwm = statusKb(pid, "VmHWM");
    if (rss > 0) {
      report.samples++;
      report.peakRssKb = Math.max(report.peakRssKb, rss);
      report.hwmKb = Math.max(report.hwmKb, hwm);
    }
  };
  take();
  const t = setInterval(take, everyMs);
  return {
    peek() {
      take();
      return { ...report };
    },
    stop() {
      take();
      clearInterval(t);
      return report;
    },
  };
}
