// The bytes the hand-written CSV code tests for (shared/src/csv.ts, the agency's scanner, the
// server's readers), defined once. Plain top-level number constants on purpose: they sit on hot
// paths, where a bare number costs nothing (no object to load a property from).
//
// The server's row encoder (server/src/storage/rows.ts) keeps its own: see the note there.

export const LF = 0x0a;
export const CR = 0x0d;
export const QUOTE = 0x22;
export const COMMA = 0x2c;
export const ZERO = 0x30;
