// The storage modules, one job each:
//   course.ts        the course's store_bets / load_bets / has_won (bets.csv, Python-compatible)
//   readers.ts       lazily decoded row view, chunked scans and an iterator over bets.csv
//   batch-check.ts   a batch checked bet by bet (PostgreSQL's path; the file store's diagnosis)
//   rows.ts          the file store's one-pass row encoder (wire batch → CSV rows)
//   segments.ts      bump allocator the rows are encoded into
//   group-commit.ts  append-only file with group-committed fdatasync
//   recovery.ts      scan of bets.csv (torn tail, corruption) and of its journal
//   types.ts         the BetStore interface the lottery uses
//   file-store.ts    BetStore over bets.csv + bets.csv.state (one server)
//   pg-*.ts          BetStore over PostgreSQL (several replicas): schema, binary rows, group-
//                    committed ingest, LISTEN, streamed reads, health
//   open.ts          picks one from the configuration

export { checkBatch } from "./batch-check.js";
export { has_won, load_bets, STORAGE_COLUMNS, STORAGE_FILEPATH, store_bets } from "./course.js";
export { FileStore, type FileStoreOptions } from "./file-store.js";
export { GroupCommitFile, openAppend } from "./group-commit.js";
export { openStore } from "./open.js";
export { pg_load_bets, pgLoadBets } from "./pg-read.js";
export { daysFromCivil, encodeBatchBinary } from "./pg-rows.js";
export { ensureSchema } from "./pg-schema.js";
export { PgStore, type PgStoreOptions } from "./pg-store.js";
export {
  type JournalReport,
  parseJournal,
  type RecoveryReport,
  readJournal,
  scanBets,
} from "./recovery.js";
export { agencyPrefix, encodeBatchCsv, maxRowsSize } from "./rows.js";
export { SegmentAllocator } from "./segments.js";
export type * from "./types.js";
