// Small text helpers for the local tools' output: numbers, tables, progress bars.

/** 1234567 -> "1,234,567". */
export function int(n: number): string {
  const s = String(Math.round(Math.abs(n)));
  const out = s.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return n < 0 ? `-${out}` : out;
}

/** Seconds with a precision suited to their size: 0.183, 2.41, 31.2. */
export function secs(ms: number): string {
  const s = ms / 1000;
  if (s < 1) return s.toFixed(3);
  if (s < 10) return s.toFixed(2);
  return s.toFixed(1);
}

/** Bets per second, rounded to 3 significant digits: "1,230,000". */
export function rate(count: number, ms: number): string {
  if (ms <= 0) return "-";
  return int(sig3(count / (ms / 1000)));
}

export function sig3(v: number): number {
  if (v === 0 || !Number.isFinite(v)) return v;
  const p = 10 ** (Math.floor(Math.log10(Math.abs(v))) - 2);
  return Math.round(v / p) * p;
}

/** /proc's kB (KiB) -> megabytes (10^6 bytes), one decimal: 48.2. */
export function mb(kb: number): number {
  return Math.round((kb * 1024) / 1e5) / 10;
}

export type Align = "left" | "right";

/** Renders rows as an aligned text table; the first row is the header, underlined. */
export function table(rows: readonly (readonly string[])[], align: readonly Align[]): string {
  const widths: number[] = [];
  for (const r of rows) {
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, width(c));
    });
  }
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => {
        const pad = " ".repeat(widths[i]! - width(c));
        return align[i] === "left" ? c + pad : pad + c;
      })
      .join("  ")
      .trimEnd();
  const out = rows.map(line);
  out.splice(1, 0, widths.map((w) => "-".repeat(w)).join("  "));
  return `${out.join("\n")}\n`;
}

/** Renders rows as a Markdown table; the first row is the header. */
export function markdownTable(
  rows: readonly (readonly string[])[],
  align: readonly Align[],
): string {
  const esc = (c: string) => c.replaceAll("|", "\\|");
  const head = rows[0] ?? [];
  const out = [`| ${head.map(esc).join(" | ")} |`];
  out.push(`|${align.map((a) => (a === "right" ? " ---: " : " :--- ")).join("|")}|`);
  for (const r of rows.slice(1)) out.push(`| ${r.map(esc).join(" | ")} |`);
  return `${out.join("\n")}\n`;
}

/** Display width (code points; good enough for our ASCII and box-drawing output). */
export function width(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** A progress bar of `cells` cells for a fraction 0..1. */
export function bar(fraction: number, cells: number): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const eighths = Math.round(f * cells * 8);
  const full = Math.floor(eighths / 8);
  const part = eighths % 8;
  const parts = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
  const s = "█".repeat(full) + (full < cells ? parts[part]! : "");
  return s + " ".repeat(cells - width(s));
}

export function pct(part: number, total: number): string {
  if (total <= 0) return "  -  ";
  return `${((100 * part) / total).toFixed(1).padStart(5)}%`;
}
