// The course's data set as the repository carries it: `.data/dataset.zip`, like the course
// skeleton. `npm run lottery` unzips the agency files that are missing, as `make
// docker-compose-up` does (scripts/agency-data.sh: unzip, python3 or busybox), and the bench's
// course scale runs them; here fflate reads the archive, so Node is all it needs. Files already
// in the folder are never touched.

import { existsSync, readFileSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { unzipSync } from "fflate";

/** The repository's archive (dist/tools/lib → the root's .data/). */
export const COURSE_ZIP = resolve(
  dirname(fileURLToPath(import.meta.url)),
  "../../../.data/dataset.zip",
);

const AGENCY_FILE = /^agency-[1-9]\d*\.csv$/;

/**
 * Extracts every agency-N.csv of the archive `zip` (at any depth in it) that `dir` lacks;
 * resolves with the names written, in agency order (none when there is no archive).
 */
export async function unzipAgencyFiles(zip: string, dir: string): Promise<string[]> {
  if (!existsSync(zip)) return [];
  const wanted = (path: string) => {
    const name = basename(path);
    return AGENCY_FILE.test(name) && !existsSync(join(dir, name));
  };
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(readFileSync(zip), { filter: (f) => wanted(f.name) });
  } catch (err) {
    throw new Error(`${zip} is not a readable zip archive: ${(err as Error).message}`);
  }
  const written: string[] = [];
  for (const [path, bytes] of Object.entries(entries)) {
    const name = basename(path);
    if (written.includes(name)) continue;
    const tmp = join(dir, `.${name}.${process.pid}.tmp`);
    await writeFile(tmp, bytes, { mode: 0o644 });
    await rename(tmp, join(dir, name));
    written.push(name);
  }
  return written.sort((a, b) => agencyOf(a) - agencyOf(b));
}

function agencyOf(name: string): number {
  return Number(name.slice("agency-".length, -".csv".length));
}
