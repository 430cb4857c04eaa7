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
import { chmodSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist/bin");

const programs = {
  "quiniela-server": "dist/server/src/main.js",
  "quiniela-agency": "dist/client/src/main.js",
};

// Files are overwritten in place and stale ones (old chunk hashes) removed afterwards, rather
// than emptying dist/bin first: programs started meanwhile (tests, a bench) keep finding them.
const written = new Set();
for (const [name, entry] of Object.entries(programs)) {
  const result = await build({
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
    metafile: true,
    absWorkingDir: root,
  });
  for (const file of Object.keys(result.metafile.outputs)) written.add(resolve(root, file));
  chmodSync(join(out, `${name}.js`), 0o755);
}
for (const entry of readdirSync(out, { recursive: true, withFileTypes: true })) {
  const file = join(entry.parentPath ?? entry.path, entry.name);
  if (entry.isFile() && !written.has(file)) rmSync(file);
}
