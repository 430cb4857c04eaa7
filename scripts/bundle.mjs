#!/usr/bin/env node
// Bundles each program into one CommonJS file (after `tsc`, from its output):
// dist/bin/quiniela-server.js and dist/bin/quiniela-agency.js are what the bins, the Docker
// images, `npm run lottery`, the bench and the integration tests run.
//
// Why: a course-sized lottery starts six Node processes on two cores, so start-up is most of
// its CPU. Loading one file instead of a graph of ES modules saves the module resolution and
// per-file work of every process (callgrind, agency 5 of the course files: 803M -> 690M
// instructions with the CA bundle of this machine's environment). And the file is CommonJS, not
// an ES module: Node 20 runs an ES module entry through its ESM loader (loader, translators,
// module jobs: built-in modules of its own), which cost about 55M instructions per process
// (agency 5 in a clean environment: 299M as an ES module bundle, 244M as CommonJS; a bare
// `node -e 0` is 85M). dist/bin/package.json says `"type": "commonjs"`, so the names stay .js.
//
// The program's own modules are all initialised at start; what is loaded lazily is packages from
// node_modules, by require() on first use: the PostgreSQL driver (server/src/storage/pg-driver.ts)
// and the config parsers (config.ts, only when a config file exists). No dynamic import() of the
// project's own modules: esbuild would initialise every module such an import shares with the
// rest in an init function, and their constants, on the server's hot paths, would become
// variables assigned there. (`node:dns/promises`, a built-in, is still imported on first use.)
import { chmodSync, readdirSync, rmSync, writeFileSync } from "node:fs";
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
    bundle: true,
    format: "cjs",
    platform: "node",
    target: "node20",
    // Only the project's own code: the runtime dependencies stay in node_modules (resolved
    // from the bundle's folder upwards) and load when they are needed.
    packages: "external",
    sourcemap: "linked",
    logLevel: "warning",
    metafile: true,
    absWorkingDir: root,
    // config.ts resolves the lazily loaded parsers from import.meta.url; createRequire takes
    // the bundle's path as well
    define: { "import.meta.url": "__filename" },
  });
  for (const file of Object.keys(result.metafile.outputs)) written.add(resolve(root, file));
  chmodSync(join(out, `${name}.js`), 0o755);
}
const typeFile = join(out, "package.json");
writeFileSync(typeFile, '{ "type": "commonjs" }\n');
written.add(typeFile);
for (const entry of readdirSync(out, { recursive: true, withFileTypes: true })) {
  const file = join(entry.parentPath ?? entry.path, entry.name);
  if (entry.isFile() && !written.has(file)) rmSync(file);
}
