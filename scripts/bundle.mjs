#!/usr/bin/env node
// Bundles each program into one file (after `tsc`, from its output): dist/bin/quiniela-server.js
// and dist/bin/quiniela-agency.js are what the bins, the Docker images, `npm run lottery`, the
// bench and the integration tests run.
//
// Why: a course-sized lottery starts six Node processes on two cores, so start-up is most of
// its CPU. Loading one file instead of a graph of ES modules saves the module resolution and
// per-file work of every process (callgrind, agency 5 of the course files: 803M -> 690M
// instructions; a bare `node -e 0` is 500M).
//
// Modules loaded with a dynamic import() (the PostgreSQL store) become chunks next to the
// bundle, loaded only when used. The config parsers stay in node_modules: config.ts loads them
// only when a config file exists.
import { chmodSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist/bin");

const programs = {
  "quiniela-server": "dist/server/src/main.js",
  "quiniela-agency": "dist/client/src/main.js",
};

rmSync(out, { recursive: true, force: true });
for (const [name, entry] of Object.entries(programs)) {
  await build({
    entryPoints: { [name]: join(root, entry) },
    outdir: out,
    chunkNames: `${name}-chunks/[name]-[hash]`,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    // Only the project's own code: the runtime dependencies stay in node_modules (resolved
    // from the bundle's folder upwards) and load when they are needed.
    packages: "external",
    sourcemap: "linked",
    logLevel: "warning",
  });
  chmodSync(join(out, `${name}.js`), 0o755);
}
