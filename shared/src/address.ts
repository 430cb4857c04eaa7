// Server address lists for agencies: `host:port[,host:port…]`, each host possibly a name that
// resolves to several replicas (Docker DNS for a scaled service). Agencies spread over the
// replicas by their id and move to the next one when a connection fails.

import { isIP } from "node:net";
import { FatalCode, QuinielaError } from "./errors.js";

export interface Endpoint {
  host: string;
  port: number;
}

/** One address to try: a resolved endpoint, or the error resolving its entry gave. */
export interface Candidate extends Endpoint {
  /** What the user wrote (`server:12345`), for logs. */
  entry: string;
  /** Set when the entry's name did not resolve: trying this candidate fails with it. */
  error?: Error;
}

function bad(message: string): never {
  throw new QuinielaError(FatalCode.BAD_CONFIG, message);
}

/** `host:port` or `[ipv6]:port`; a host with a colon must be bracketed (else it is ambiguous). */
export function parseEndpoint(text: string): Endpoint {
  const t = text.trim();
  const m = /^(?:\[([^\][\s]+)\]|([^\][\s:]+)):(\d{1,5})$/.exec(t);
  if (!m) {
    const hint = /^[^[]*:.*:/.test(t) ? " (write an IPv6 address in brackets: [::1]:12345)" : "";
    bad(`server address must be host:port, got "${text}"${hint}`);
  }
  const host = m[1] ?? m[2]!;
  if (m[1] !== undefined && isIP(host) !== 6) bad(`"${host}" in brackets is not an IPv6 address`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535) bad(`server port must be between 1 and 65535, got ${m[3]}`);
  return { host, port };
}

/** A comma-separated list of endpoints (spaces around entries ignored, none may be empty). */
export function parseAddressList(text: string): Endpoint[] {
  const parts = text.split(",");
  return parts.map((p, i) => {
    if (p.trim() === "") {
      bad(`server address list "${text}" has an empty entry (number ${i + 1})`);
    }
    return parseEndpoint(p);
  });
}

export function formatEndpoint(e: Endpoint): string {
  return isIP(e.host) === 6 ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

/** Resolves a host name to all its addresses. */
export type Lookup = (host: string) => Promise<string[]>;

// node:dns is loaded on the first name to resolve: IP literals (local runs) never need it.
export const systemLookup: Lookup = async (host) => {
  const { lookup } = await import("node:dns/promises");
  return (await lookup(host, { all: true })).map((a) => a.address);
};

function v4Number(a: string): number {
  return a.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

/** A stable order (IPv4 first, numerically): every agency must see the same list to spread. */
function compareAddresses(a: string, b: string): number {
  const fa = isIP(a);
  const fb = isIP(b);
  if (fa !== fb) return fa - fb;
  if (fa === 4) return v4Number(a) - v4Number(b);
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Expands the entries into concrete candidates: IP literals as they are, names through `lookup`
 * (all addresses, sorted), duplicates dropped. A name that does not resolve stays one candidate
 * carrying the error, so it takes its turn (and fails) like an unreachable address.
 */
export async function resolveEndpoints(
  entries: readonly Endpoint[],
  lookup: Lookup = systemLookup,
): Promise<Candidate[]> {
  const resolved = await Promise.all(
    entries.map(async (e): Promise<Candidate[]> => {
      const entry = formatEndpoint(e);
      if (isIP(e.host) !== 0) return [{ host: e.host, port: e.port, entry }];
      try {
        const addrs = [...new Set(await lookup(e.host))].sort(compareAddresses);
        if (addrs.length === 0) throw new Error(`${e.host} has no addresses`);
        return addrs.map((host) => ({ host, port: e.port, entry }));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const error = new Error(code ? `${code} ${e.host}` : (err as Error).message);
        return [{ host: e.host, port: e.port, entry, error }];
      }
    }),
  );
  const seen = new Set<string>();
  const out: Candidate[] = [];
  for (const c of resolved.flat()) {
    const key = formatEndpoint(c);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(c);
  }
  return out;
}

/**
 * Which replica an agency tries: entry `(id-1+moves) mod n` of the list resolved at the start
 * of each round, where `moves` counts failures so far. So agency N starts at entry (N-1) mod n
 * and each failure moves it to the next entry; a round is over when each entry failed once,
 * and the caller backs off only then (a different replica is worth trying at once). When the
 * list changed size between rounds the formula could land on the replica that just failed:
 * that one is skipped.
 */
export class Rotation {
  private list: Candidate[] = [];
  private moves = 0;
  private failures = 0;
  private lastFailed: string | null = null;

  constructor(
    private readonly entries: readonly Endpoint[],
    private readonly id: number,
    private readonly lookup: Lookup = systemLookup,
  ) {
    if (entries.length === 0) throw new RangeError("no server address");
  }

  /** Resolves the entries again (replicas come and go) and starts counting a new round. */
  async startRound(): Promise<void> {
    this.list = await resolveEndpoints(this.entries, this.lookup);
    this.failures = 0;
    if (this.list.length > 1 && formatEndpoint(this.current) === this.lastFailed) this.moves++;
  }

  /** The candidate to try now (`startRound` must have run once). */
  get current(): Candidate {
    const n = this.list.length;
    if (n === 0) throw new Error("Rotation.current before startRound");
    return this.list[(((this.id - 1 + this.moves) % n) + n) % n]!;
  }

  /** Candidates of the current round, in list order. */
  get candidates(): readonly Candidate[] {
    return this.list;
  }

  /** The current candidate failed: move to the next. True when the whole round has failed. */
  fail(): boolean {
    this.lastFailed = formatEndpoint(this.current);
    this.moves++;
    this.failures++;
    return this.failures >= this.list.length;
  }
}
