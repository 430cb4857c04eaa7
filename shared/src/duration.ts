// Go's time.Duration text form, because the course's config uses it (`5s`, `100ms`, `1m30s`)
// and the logged config must print it back the way the Go client did.

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Parses a Go duration into milliseconds; null when malformed. A bare `0` is allowed (Go does). */
export function parseDuration(text: string): number | null {
  let s = text.trim();
  if (s === "") return null;
  let sign = 1;
  if (s[0] === "-" || s[0] === "+") {
    if (s[0] === "-") sign = -1;
    s = s.slice(1);
  }
  if (s === "0") return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) return null;
    total += Number(m[1]) * (UNITS[m[2]!] as number);
    pos = re.lastIndex;
  }
  return sign * total;
}

function fmtFrac(v: bigint, prec: number): string {
  // v has `prec` fractional digits; strip trailing zeros like Go's fmtFrac.
  const unit = 10n ** BigInt(prec);
  const whole = v / unit;
  let frac = (v % unit).toString().padStart(prec, "0").replace(/0+$/, "");
  if (frac.length > 0) frac = `.${frac}`;
  return `${whole}${frac}`;
}

/** Formats milliseconds exactly as Go's Duration.String() (`100ms`, `5s`, `1m30s`, `1h0m0s`). */
export function formatDuration(ms: number): string {
  let ns = BigInt(Math.round(ms * 1e6));
  if (ns === 0n) return "0s";
  const neg = ns < 0n;
  if (neg) ns = -ns;
  let out: string;
  if (ns < 1_000_000_000n) {
    if (ns < 1000n) out = `${ns}ns`;
    else if (ns < 1_000_000n) out = `${fmtFrac(ns, 3)}µs`;
    else out = `${fmtFrac(ns, 6)}ms`;
  } else {
    const h = ns / 3_600_000_000_000n;
    const rem = ns % 3_600_000_000_000n;
    const m = rem / 60_000_000_000n;
    const s = rem % 60_000_000_000n;
    out = `${fmtFrac(s, 9)}s`;
    if (h > 0n) out = `${h}h${m}m${out}`;
    else if (m > 0n) out = `${m}m${out}`;
  }
  return neg ? `-${out}` : out;
}
