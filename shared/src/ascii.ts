// The bytes the hand-written CSV code tests for (shared/src/csv.ts, the agency's scanner, the
// server's row encoder and readers), defined once. Plain top-level number constants on purpose:
// they sit on hot paths, where a bare number costs nothing (no object to load a property from).
// They stay plain in the bundles only while every module is initialised eagerly: see
// server/src/storage/pg-driver.ts.

export const LF = 0x0a;
export const CR = 0x0d;
export const QUOTE = 0x22;
export const COMMA = 0x2c;
export const ZERO = 0x30;
