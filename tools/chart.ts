#!/usr/bin/env node
/**
 * chart: redraws a bench's SVG chart from any bench.json (the bench writes results/bench.svg
 * itself at the end of each run).
 *
 *   npm run chart [-- --in results/bench.json] [--out FILE]
 *
 * --out defaults to the input's path with .svg for .json; `--out -` writes to stdout.
 */
import { readFile, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { benchChart } from "./lib/chart.js";
import { isMain } from "./lib/cli.js";

const USAGE = `Usage: node dist/tools/chart.js [--in FILE] [--out FILE|-]

  --in FILE    a bench.json (default results/bench.json)
  --out FILE   where the SVG goes (default: FILE of --in with .svg; - for stdout)
`;

export async function main(argv: readonly string[]): Promise<number> {
  let values: { in?: string; out?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { in: { type: "string" }, out: { type: "string" }, help: { type: "boolean" } },
    }));
  } catch (e) {
    process.stderr.write(`chart: ${(e as Error).message.split("\n")[0]}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const input = values.in ?? "results/bench.json";
  const out = values.out ?? `${input.replace(/\.json$/i, "")}.svg`;
  let json: unknown;
  try {
    json = JSON.parse(await readFile(input, "utf8"));
  } catch (e) {
    process.stderr.write(`chart: cannot read ${input}: ${(e as Error).message}\n`);
    return 1;
  }
  const svg = benchChart(json);
  if (out === "-") {
    process.stdout.write(svg);
  } else {
    await writeFile(out, svg);
    process.stdout.write(`wrote ${out}\n`);
  }
  return 0;
}

if (isMain(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
