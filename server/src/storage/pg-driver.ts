// The PostgreSQL driver (`pg`), required on first use: a server with the file store (the default,
// the course's setup) never loads its dozens of modules. A require, not a dynamic import(): with
// an import() in the graph, esbuild initialises every module the PostgreSQL store shares with
// the rest lazily, and the server's hot paths then read their constants from mutable variables
// (scripts/bundle.mjs).

import { createRequire } from "node:module";
import type pg from "pg";

const lazyRequire = createRequire(import.meta.url);

export function pgDriver(): typeof pg {
  return lazyRequire("pg") as typeof pg;
}
