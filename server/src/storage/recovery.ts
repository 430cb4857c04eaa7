// Crash recovery of the file store. The bets file: only its end can be torn (an append cut short
// by a crash), so the scan finds where the last complete row ends and counts the rows per agency
// (each agency's committed position); a complete row that is not a bet row is corruption, and the
// server refuses to start rather than guess. The journal (bets.csv.state): `done,AGENCY,TOTAL`
// lines; a torn last line is cut off.

import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { CsvReader } from "../../../shared/src/csv.js";

export interface RecoveryReport {
  rows: number;
  /** Offset of a complete row that is not a bet row (corruption, not a torn write), or -1. */
  corruptAt: number;
  truncatedBytes: number;
  perAgency: Map<number, number>;
}

/**
 * Scans the bets file: counts complete rows per agency and finds where the last complete row
 * ends. Anything after it is a torn write from a crash and is cut off by the caller.
 */
export async function scanBets(
  path: string,
): Promise<RecoveryReport & { goodBytes: number; size: number }> {
  const perAgency = new Map<number, number>();
  const empty = { rows: 0, corruptAt: -1, truncatedBytes: 0, perAgency, goodBytes: 0, size: 0 };
  let size = 0;
  try {
    size = (await stat(path)).size;
  } catch {
    return empty;
  }
  const reader = new CsvReader();
  let goodBytes = 0;
  let rows = 0;
  let corruptAt = -1;
  // Only the bytes the file had when it was looked at (a device such as /dev/full never ends).
  if (size === 0) return empty;
  const stream = createReadStream(path, { highWaterMark: 256 * 1024, end: size - 1 });
  // Only the end of the file can be torn (an interrupted append); a complete row that is not a
  // bet row anywhere is corruption, reported so the server refuses to start instead of guessing.
  scan: for await (const chunk of stream as AsyncIterable<Buffer>) {
    reader.feed(chunk);
    for (let rec = reader.next(); rec; rec = reader.next()) {
      const agency =
        rec.fieldCount === 6
          ? Number(rec.bufs[0]!.toString("latin1", rec.starts[0], rec.ends[0]))
          : Number.NaN;
      if (!Number.isInteger(agency) || agency < 0) {
        corruptAt = rec.startOffset;
        break scan;
      }
      perAgency.set(agency, (perAgency.get(agency) ?? 0) + 1);
      rows++;
      goodBytes = rec.endOffset;
    }
  }
  stream.destroy();
  return { rows, corruptAt, truncatedBytes: size - goodBytes, perAgency, goodBytes, size };
}

export interface JournalReport {
  /** Finished agencies and their totals. */
  done: Map<number, number>;
  /** Bytes to keep: up to the end of the last complete line. */
  keepBytes: number;
}

export function parseJournal(text: string): Map<number, number> {
  const done = new Map<number, number>();
  for (const line of text.split("\r\n")) {
    const m = /^done,(\d+),(\d+)$/.exec(line);
    if (m) done.set(Number(m[1]), Number(m[2]));
  }
  return done;
}

/** Reads the journal (a missing one is empty). */
export async function readJournal(path: string): Promise<JournalReport> {
  let text = "";
  try {
    text = await readFile(path, "latin1");
  } catch {
    text = "";
  }
  const end = text.lastIndexOf("\r\n");
  const keepBytes = end < 0 ? 0 : end + 2;
  return { done: parseJournal(text.slice(0, keepBytes)), keepBytes };
}
