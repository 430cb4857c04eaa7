import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { benchChart, chartData, REFERENCE } from "../../tools/lib/chart.js";

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), "../../tools/chart.js");

/** A bench.json's shape, cut to what matters, with a failed row and one without a median. */
const FIXTURE = {
  machine: {
    cpus: 2,
    cpuModel: "AMD EPYC",
    node: "v20.20.2",
    commit: "abc1234",
    date: "2026-12-01T09:30:00.000Z",
  },
  results: [
    row("course", "base", 5, 78_697, [true, true, true], 152_000),
    row("5x1M", "base", 5, 5_000_000, [true, true, true], 1_210_000),
    row("5x1M", "window 1", 5, 5_000_000, [true, false, true], 336_000),
    row("5x1M", "tls & <x> > \"y\" 'z'", 5, 5_000_000, [false, false], 1_000, false),
    row("1000x5k", "3 replicas + PostgreSQL", 1000, 5_000_000, [true], 199_000),
    { scale: "50x100k", config: "base", agencies: 50, bets: 5_000_000, runs: [] },
  ],
};

function row(
  scale: string,
  config: string,
  agencies: number,
  bets: number,
  oks: boolean[],
  betsPerSecond: number,
  ok = true,
) {
  const runs = oks.map((o) => ({
    ok: o,
    problems: [],
    betsPerSecond,
    seconds: bets / betsPerSecond,
  }));
  return { scale, config, agencies, bets, runs, median: { ok, betsPerSecond, seconds: 1 } };
}

const ENTITY = /&(?:amp|lt|gt|quot|apos);/g;

/**
 * A small XML well-formedness check: every tag is a name with double-quoted attributes, tags
 * nest and close, one root element, and no bare `<`, `>` or `&` in text or attribute values.
 */
function assertWellFormed(xml: string): void {
  const stack: string[] = [];
  let roots = 0;
  let last = 0;
  const text = (s: string) => {
    assert.ok(!/[<>]/.test(s) && !s.replace(ENTITY, "").includes("&"), `bad text: ${s}`);
    if (stack.length === 0) assert.equal(s.trim(), "", `text outside the root: ${s}`);
  };
  for (const m of xml.matchAll(/<[^<>]*>/g)) {
    text(xml.slice(last, m.index));
    last = m.index + m[0].length;
    const tag = m[0].match(/^<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<>]*")*)\s*(\/?)>$/);
    assert.ok(tag, `malformed tag: ${m[0]}`);
    const [, close, name, attrs, selfClose] = tag;
    assert.ok(!attrs!.replace(ENTITY, "").includes("&"), `bare & in ${m[0]}`);
    if (close) {
      assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
    } else {
      if (stack.length === 0) roots++;
      if (!selfClose) stack.push(name!);
    }
  }
  text(xml.slice(last));
  assert.deepEqual(stack, [], "unclosed elements");
  assert.equal(roots, 1, "one root element");
}

/** The numeric attributes of every `<rect class="bar">`, in document order. */
function bars(svg: string): { x: number; width: number }[] {
  return [...svg.matchAll(/<rect class="bar" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"/g)].map(
    (m) => ({ x: Number(m[1]), width: Number(m[2]) }),
  );
}

describe("bench chart", () => {
  const svg = benchChart(FIXTURE);

  it("is well-formed SVG with a viewBox and nothing external", () => {
    assertWellFormed(svg);
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" viewBox="0 0 \d+ [\d.]+"/);
    assert.doesNotMatch(svg, /<script|<image|<style|href=|@import|url\(/);
  });

  it("the checker itself rejects broken markup", () => {
    assert.throws(() => assertWellFormed("<svg><g></svg>"));
    assert.throws(() => assertWellFormed("<svg><text>a & b</text></svg>"));
    assert.throws(() => assertWellFormed('<svg><text x="1">a < b</text></svg>'));
  });

  it("draws one bar per row with a figure and marks the others", () => {
    assert.equal(bars(svg).length, 4);
    assert.match(svg, />failed: 0 of 2 runs ok</);
    assert.match(svg, />no figure</);
    assert.match(svg, />336,000 \(2 of 3 runs ok\)</);
    for (const label of ["1,210,000", "152,000", "199,000"]) assert.ok(svg.includes(`>${label}<`));
  });

  it("makes bar lengths proportional to bets/s, from one origin", () => {
    const b = bars(svg);
    const bps = [152_000, 1_210_000, 336_000, 199_000];
    const perBet = b[1]!.width / bps[1]!;
    b.forEach((bar, i) => {
      assert.equal(bar.x, b[0]!.x);
      // coordinates are written with one decimal
      assert.ok(Math.abs(bar.width - bps[i]! * perBet) <= 0.2, `bar ${i}: ${bar.width}`);
    });
  });

  it("draws the reference band at 100,000-112,000 bets/s on the bars' scale, labelled", () => {
    const band = svg.match(
      /<g class="reference">[\s\S]*?<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"/,
    );
    assert.ok(band, "reference band");
    const [x0, perBet] = [bars(svg)[0]!.x, bars(svg)[1]!.width / 1_210_000];
    assert.ok(Math.abs(Number(band[1]) - (x0 + REFERENCE.low * perBet)) <= 0.2);
    assert.ok(Math.abs(Number(band[2]) - (REFERENCE.high - REFERENCE.low) * perBet) <= 0.2);
    assert.ok(svg.includes("best course solution (Python + Go), 5 × 1M: 100,000–112,000 bets/s"));
  });

  it("escapes the markup characters of labels", () => {
    assert.ok(svg.includes("tls &amp; &lt;x&gt; &gt; &quot;y&quot; &apos;z&apos;"));
    assert.ok(!svg.includes("tls & <x>"));
  });

  it("titles the chart with the commit and date, groups rows under their scale", () => {
    assert.match(svg, /<title>Quiniela bench: bets\/s \(commit abc1234, 2026-12-01 09:30 UTC\)</);
    const order = [
      "course: 78,697 bets, 5 agencies",
      "5x1M: 5 × 1,000,000 bets",
      "1000x5k",
      "50x100k",
    ];
    const at = order.map((s) => svg.indexOf(`font-weight="bold">${s}`));
    assert.ok(
      at.every((p, i) => p > 0 && (i === 0 || p > at[i - 1]!)),
      `${at}`,
    );
  });

  it("is deterministic", () => {
    assert.equal(benchChart(structuredClone(FIXTURE)), svg);
  });

  it("draws anything json gives it without throwing", () => {
    for (const json of [null, {}, { results: "x" }, { results: [null, 3, { median: {} }] }]) {
      const out = benchChart(json);
      assertWellFormed(out);
      assert.equal(bars(out).length, 0);
    }
    assert.match(benchChart({}), />no results</);
    assert.equal(
      chartData({ results: [{ median: { betsPerSecond: -1 } }] }).rows[0]!.betsPerSecond,
      null,
    );
  });

  it("the CLI writes the same chart from a bench.json file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "chart-test-"));
    try {
      const input = join(dir, "bench.json");
      await writeFile(input, JSON.stringify(FIXTURE));
      const r = spawnSync(process.execPath, [CLI, "--in", input, "--out", "-"], {
        encoding: "utf8",
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, svg);
      const bad = spawnSync(process.execPath, [CLI, "--in", join(dir, "missing.json")], {
        encoding: "utf8",
      });
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /cannot read/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
