// Draws a bench.json as an SVG bar chart: bets/s per (scale, configuration), with the best
// course solution's figure as a reference band. Plain SVG (text, a viewBox, generic font names,
// no scripts or external resources) so that GitHub shows it in a markdown page through <img>.
// Pure and deterministic: the same json gives the same bytes, so a regenerated docs/bench.svg
// only changes when the figures do.

import { int, sig3, width } from "./format.js";

/** The best course solution (Python server + Go clients) at 5 × 1M, measured on this machine. */
export const REFERENCE = {
  low: 100_000,
  high: 112_000,
  label: "best course solution (Python + Go), 5 × 1M",
} as const;

export interface ChartRow {
  scale: string;
  /** The scale with its size when the json gives it: "5x1M: 5 × 1,000,000 bets". */
  scaleLabel: string;
  config: string;
  /** The median's bets/s; null when no run succeeded or the json has no usable figure. */
  betsPerSecond: number | null;
  runs: number;
  okRuns: number;
}

export interface ChartData {
  title: string;
  subtitle: string;
  rows: ChartRow[];
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Obj) : {};
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const num = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isFinite(v) ? v : undefined;

/**
 * Reads what the chart needs from a parsed bench.json. Lenient on purpose: an older, partial or
 * hand-edited file still draws, with its unusable rows marked rather than an error.
 */
export function chartData(json: unknown): ChartData {
  const root = obj(json);
  const m = obj(root.machine);
  const rows = (Array.isArray(root.results) ? root.results : []).map((v): ChartRow => {
    const r = obj(v);
    const runs = Array.isArray(r.runs) ? r.runs.map(obj) : [];
    const median = obj(r.median);
    const bps = num(median.betsPerSecond);
    const scale = str(r.scale) ?? "?";
    const agencies = num(r.agencies);
    const bets = num(r.bets);
    let size = "";
    if (agencies !== undefined && bets !== undefined && agencies > 0) {
      size =
        bets % agencies === 0
          ? `: ${int(agencies)} × ${int(bets / agencies)} bets`
          : `: ${int(bets)} bets, ${int(agencies)} agencies`;
    }
    return {
      scale,
      scaleLabel: scale + size,
      config: str(r.config) ?? "?",
      // bench takes the median of the successful runs; median.ok false means none succeeded
      betsPerSecond: median.ok !== false && bps !== undefined && bps >= 0 ? bps : null,
      runs: runs.length,
      okRuns: runs.filter((x) => x.ok === true).length,
    };
  });
  const commit = str(m.commit);
  const date = str(m.date);
  const when = date?.match(/^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/);
  const about = [
    commit === undefined ? "" : `commit ${commit}`,
    when ? `${when[1]} ${when[2]} UTC` : (date ?? ""),
  ].filter((s) => s !== "");
  const cpus = num(m.cpus);
  const model = str(m.cpuModel);
  const node = str(m.node);
  const machine = [
    cpus !== undefined && model !== undefined ? `${cpus} × ${model}` : (model ?? ""),
    node === undefined ? "" : `node ${node}`,
  ].filter((s) => s !== "");
  return {
    title: `Quiniela bench: bets/s${about.length > 0 ? ` (${about.join(", ")})` : ""}`,
    subtitle: [...machine, "median of the runs, higher is better"].join("; "),
    rows,
  };
}

/** XML text and attribute values: every markup character escaped. */
export function escapeXml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => `&${{ "&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos" }[c]};`,
  );
}

// Layout, in viewBox units (≈ px at the natural size).
const { W, PAD, FONT, GROUP_H, ROW_H, BAR_H } = {
  W: 800,
  PAD: 16,
  FONT: 12,
  GROUP_H: 24,
  ROW_H: 22,
  BAR_H: 15,
};
// no font is embedded, so text widths are estimated (generous for sans-serif digits and letters)
const textW = (s: string, size = FONT) => width(s) * size * 0.6;
// Okabe-Ito colours (readable by colour-blind readers), yellow left out: too pale on white
const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#555555"];

/** Coordinates with one decimal: short and stable output. */
const n = (v: number) => String(Math.round(v * 10) / 10);

/** A round axis step (1, 2, 2.5 or 5 × 10^k) giving about `ticks` ticks up to `max`. */
function niceStep(max: number, ticks: number): number {
  const raw = max / ticks;
  const p = 10 ** Math.floor(Math.log10(raw));
  return p * ([1, 2, 2.5, 5, 10].find((f) => f * p >= raw) ?? 10);
}

function valueLabel(r: ChartRow): string {
  if (r.betsPerSecond === null) {
    return r.runs > 0 && r.okRuns === 0 ? `failed: 0 of ${r.runs} runs ok` : "no figure";
  }
  const note = r.okRuns < r.runs ? ` (${r.okRuns} of ${r.runs} runs ok)` : "";
  return `${int(sig3(r.betsPerSecond))}${note}`;
}

/** Cuts a label to `max` units of width, marking the cut. */
function fit(s: string, max: number): string {
  if (textW(s) <= max) return s;
  const chars = [...s];
  while (chars.length > 1 && textW(`${chars.join("")}…`) > max) chars.pop();
  return `${chars.join("")}…`;
}

/** The chart of a bench.json's data, as an SVG document. */
export function renderChart(d: ChartData): string {
  // scales in order of first appearance, each with its rows in the json's order
  const groups = new Map<string, ChartRow[]>();
  for (const r of d.rows) groups.set(r.scale, [...(groups.get(r.scale) ?? []), r]);
  const colours = new Map<string, string>();
  for (const r of d.rows) {
    if (!colours.has(r.config)) colours.set(r.config, PALETTE[colours.size % PALETTE.length]!);
  }
  // the label column holds the configurations and the scales' headings (bold: wider)
  const labelW = Math.min(
    260,
    Math.max(
      120,
      ...d.rows.map((r) => Math.max(textW(r.config) + 28, textW(r.scaleLabel) * 1.1 + 8)),
    ),
  );
  const x0 = PAD + labelW;
  const maxBps = Math.max(REFERENCE.high, ...d.rows.map((r) => r.betsPerSecond ?? 0));
  // about 5 ticks keep labels like "1,500,000" apart at any plot width this layout gives
  const step = niceStep(maxBps, 5);
  const axisMax = Math.ceil(maxBps / step) * step;
  // the widest plot that leaves each bar's value label (and the last tick's) inside the chart
  let plotW = W - PAD - 30 - x0;
  for (const r of d.rows) {
    const room = W - PAD - x0 - 5 - textW(valueLabel(r));
    plotW = Math.min(plotW, r.betsPerSecond === null ? plotW : room / (r.betsPerSecond / axisMax));
  }
  const top = 92;
  const xs = (v: number) => x0 + (v / axisMax) * plotW;

  const body: string[] = [];
  let y = top;
  for (const [, rows] of groups) {
    body.push(
      `<text x="${PAD}" y="${n(y + 16)}" font-weight="bold">${escapeXml(fit(rows[0]!.scaleLabel, (labelW - 8) / 1.1))}</text>`,
    );
    y += GROUP_H;
    for (const r of rows) {
      const mid = y + ROW_H / 2;
      const label = valueLabel(r);
      const tip = `${r.scaleLabel}, ${r.config}: ${r.betsPerSecond === null ? label : `${label} bets/s`}`;
      body.push(`<g><title>${escapeXml(tip)}</title>`);
      body.push(
        `<text x="${PAD + 12}" y="${n(mid + 4)}">${escapeXml(fit(r.config, labelW - 24))}</text>`,
      );
      if (r.betsPerSecond === null) {
        body.push(
          `<text x="${n(x0 + 6)}" y="${n(mid + 4)}" fill="#B00020" font-style="italic">${escapeXml(label)}</text>`,
        );
      } else {
        const end = xs(r.betsPerSecond);
        body.push(
          `<rect class="bar" x="${n(x0)}" y="${n(mid - BAR_H / 2)}" width="${n(end - x0)}" height="${BAR_H}" fill="${colours.get(r.config)}"/>`,
          `<text x="${n(end + 5)}" y="${n(mid + 4)}">${escapeXml(label)}</text>`,
        );
      }
      body.push("</g>");
      y += ROW_H;
    }
  }
  if (d.rows.length === 0) {
    body.push(`<text x="${n(x0 + 6)}" y="${n(y + 16)}" font-style="italic">no results</text>`);
    y += GROUP_H;
  }
  const bottom = y + 4;

  // grid and axis under the bars, the reference band over the grid
  const grid: string[] = [];
  for (let v = 0; v <= axisMax + step / 2; v += step) {
    const x = n(xs(v));
    grid.push(
      `<line x1="${x}" y1="${top}" x2="${x}" y2="${n(bottom)}" stroke="${v === 0 ? "#333" : "#DDD"}"/>`,
      `<text x="${x}" y="${n(bottom + 16)}" text-anchor="middle" font-size="11">${int(v)}</text>`,
    );
  }
  const lo = xs(REFERENCE.low);
  const hi = xs(REFERENCE.high);
  const refText = `${REFERENCE.label}: ${int(REFERENCE.low)}–${int(REFERENCE.high)} bets/s`;
  // the label starts beside the band, moved left as far as it has to be to fit
  const refX = Math.max(PAD, Math.min(hi + 4, W - PAD - textW(refText)));
  const ref = [
    `<g class="reference"><title>${escapeXml(refText)}</title>`,
    `<rect x="${n(lo)}" y="${top - 4}" width="${n(Math.max(hi - lo, 1))}" height="${n(bottom - top + 4)}" fill="#B00020" fill-opacity="0.25" stroke="#B00020" stroke-dasharray="3 2"/>`,
    `<text x="${n(refX)}" y="${top - 8}" fill="#B00020">${escapeXml(refText)}</text>`,
    "</g>",
  ];
  const h = bottom + 44;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${n(h)}" width="${W}" height="${n(h)}" role="img" aria-label="${escapeXml(d.title)}" font-family="Helvetica, Arial, sans-serif" font-size="${FONT}" fill="#222">`,
    `<title>${escapeXml(d.title)}</title>`,
    // GitHub's dark theme would put dark text on a dark page: the chart brings its background
    `<rect width="${W}" height="${n(h)}" fill="#FFF"/>`,
    `<text x="${PAD}" y="28" font-size="16" font-weight="bold">${escapeXml(d.title)}</text>`,
    `<text x="${PAD}" y="48" fill="#555">${escapeXml(d.subtitle)}</text>`,
    ...grid,
    ...ref,
    ...body,
    `<text x="${n(x0 + plotW / 2)}" y="${n(bottom + 34)}" text-anchor="middle" fill="#555">bets/s</text>`,
    "</svg>",
    "",
  ].join("\n");
}

/** bench.json (parsed) -> SVG. */
export function benchChart(json: unknown): string {
  return renderChart(chartData(json));
}
