#!/usr/bin/env node
/**
 * Deterministic synthetic data generator for the agencies' input files.
 *
 * Writes `DIR/agency-{N}.csv` for N = 1..agencies, rows
 * `first_name,last_name,document,birthdate,number` (no header), UTF-8, LF or CRLF, quoted
 * exactly as Python's `csv.writer(quoting=csv.QUOTE_MINIMAL)` would quote them.
 *
 * CLI (after `npm run build`):
 *
 *   node dist/tools/gen-data.js --out DIR [--agencies N] [--bets M | --bets 10,20,…]
 *        [--winners W | --winners 2,3,3,2,0] [--seed S] [--crlf] [--tricky RATE] [--json]
 *
 * Run with `--help` for the details. Usage errors exit 2, I/O errors exit 1.
 *
 * Determinism: every random choice comes from mulberry32, a tiny 32-bit PRNG (one uint32 of
 * state; `t += 0x6d2b79f5` then two xor-shift-multiply rounds). Each agency uses independent
 * streams seeded from `mix32(seed, agency, stream)` (a murmur3/splitmix-style finaliser), so
 * the same seed and options give byte-identical files and different agencies differ:
 *   - stream 0 ("row")    names, birthdate and the number of every row;
 *   - stream 1 ("pick")   which rows are the winners (selection sampling, Knuth's
 *                         Algorithm S: row i wins with probability need / rowsLeft, which
 *                         yields exactly W winners at uniformly random positions, streaming);
 *   - stream 2 ("tricky") which rows get a CSV-hostile name (only when --tricky > 0).
 * Changing --winners therefore only changes the `number` column, and --tricky only swaps
 * some names.
 *
 * Documents: 8-digit strings, zero-padded (so leading zeros occur). Row i of an agency gets
 * `perm(offset + i)` where `perm` is a 4-round Feistel permutation of 0..99,999,999 (two
 * base-10,000 halves, keyed by the seed) and `offset` is the number of rows of the agencies
 * before it. Documents are thus unique within an agency and across the whole dataset (as
 * long as the dataset holds at most 100,000,000 rows, which is enforced).
 *
 * Birthdates: uniform over the calendar days 1940-01-01 .. 2006-12-31.
 * Numbers: uniform over 0..9999 without 7574 for every row except the W winners (7574).
 *
 * Memory and speed: names and dates are UTF-8-encoded once into byte tables; rows are
 * written byte by byte into ~64 KiB Buffer chunks that go to a file stream (waiting for
 * 'drain' when the stream asks), so memory does not grow with the row count (≈ 66 MB peak RSS
 * for 10,000,000 rows, about 3 M rows/s on a 2-core machine).
 * Files are written as `agency-N.csv.tmp` and renamed when complete.
 */
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { finished } from "node:stream/promises";
import { LOTTERY_WINNER_NUMBER } from "../shared/src/bet.js";
import { Mulberry32, mix32 } from "../shared/src/prng.js";
import { isMain, parseOptions, UsageError } from "./lib/cli.js";

/** The draw's winning number (`LOTTERY_WINNER_NUMBER`). */
export const WINNING_NUMBER = LOTTERY_WINNER_NUMBER;
/** Documents are 8-digit strings: at most this many distinct ones. */
export const DOCUMENT_SPACE = 100_000_000;
/** Earliest and latest birthdate generated (inclusive). */
export const MIN_BIRTHDATE = "1940-01-01";
export const MAX_BIRTHDATE = "2006-12-31";
/** Winners per agency when none are given: the course dataset's pattern, repeated. */
export const DEFAULT_WINNERS_PATTERN: readonly number[] = [2, 3, 3, 2, 0];
/** The course's dataset: bets per agency (`--course` repeats them, with the winners above). */
export const COURSE_BETS: readonly number[] = [26936, 25518, 16014, 9238, 991];

/** Bets per agency shaped like the course's data, for `agencies` agencies. */
export function courseBets(agencies: number): number[] {
  return Array.from({ length: agencies }, (_, i) => COURSE_BETS[i % COURSE_BETS.length]!);
}

const CHUNK_BYTES = 64 * 1024;
const STREAM_HIGH_WATER = 256 * 1024;

// ---------------------------------------------------------------------------------------------
// Names

// biome-ignore format: compact word list
const MALE: readonly string[] = [
  "Santiago", "Mateo", "Juan", "Benjamín", "Tomás", "Lautaro", "Thiago", "Joaquín", "Nicolás",
  "Martín", "Agustín", "Facundo", "Lucas", "Franco", "Matías", "Gonzalo", "Ezequiel", "Ramiro",
  "Federico", "Diego", "Sebastián", "Emanuel", "Lionel", "Maximiliano", "Julián", "Ignacio",
  "Valentín", "Bautista", "Hernán", "Germán", "Rodrigo", "Pablo", "Alejandro", "Fernando",
  "Gustavo", "Sergio", "Carlos", "Jorge", "Luis", "José", "Héctor", "Raúl", "Rubén", "Néstor",
  "Óscar", "Andrés", "Damián", "Cristian", "Leandro", "Marcos", "Iván", "Gastón", "Adrián",
  "Darío", "Mauricio", "Claudio", "Walter", "Osvaldo", "Ricardo", "Roberto", "Daniel",
  "Eduardo", "Alberto", "Hugo", "Mario", "Ángel", "Ramón", "Aníbal", "Elías", "Simón", "Fabián",
  "Cristóbal", "Joel", "Bruno", "Santino", "Felipe", "Ciro", "Gael", "Dante", "Emiliano",
  "Ulises", "Nahuel", "Lisandro", "Enzo", "Máximo", "Horacio", "Rogelio", "Abel", "Efraín",
  "Juan Pablo", "Juan Cruz", "Juan Manuel", "Juan Ignacio", "José Luis", "Miguel Ángel",
  "Juan Martín", "Luis María",
];

// biome-ignore format: compact word list
const FEMALE: readonly string[] = [
  "María", "Sofía", "Valentina", "Martina", "Camila", "Lucía", "Florencia", "Agustina",
  "Micaela", "Milagros", "Julieta", "Victoria", "Catalina", "Josefina", "Guadalupe", "Belén",
  "Rocío", "Celeste", "Paula", "Carolina", "Natalia", "Verónica", "Silvina", "Mariela",
  "Andrea", "Gabriela", "Laura", "Romina", "Soledad", "Ana", "Inés", "Mónica", "Graciela",
  "Susana", "Norma", "Marta", "Beatriz", "Liliana", "Alejandra", "Noelia", "Daiana", "Brenda",
  "Abril", "Emilia", "Isabella", "Mía", "Zoe", "Renata", "Pilar", "Malena", "Candela", "Ailén",
  "Luján", "Ángeles", "Constanza", "Jimena", "Lourdes", "Nahir", "Antonella", "Rosario",
  "Mercedes", "Dolores", "Estefanía", "Débora", "Raquel", "Cecilia", "Elena", "Teresa",
  "Silvia", "Araceli", "Azul", "Ayelén", "Yanina", "Noemí", "Dalma", "Eugenia", "Itatí",
  "María José", "María Laura", "Ana María", "María de los Ángeles", "María del Carmen",
  "María Eugenia", "María Belén", "María Sol",
];

// biome-ignore format: compact word list
const SURNAMES: readonly string[] = [
  // the most frequent ones, most frequent first (weighted: see SURNAME_TABLE_B)
  "González", "Rodríguez", "Gómez", "Fernández", "López", "Díaz", "Martínez", "Pérez", "García",
  "Sánchez", "Romero", "Sosa", "Álvarez", "Torres", "Ruiz", "Ramírez", "Flores", "Acosta",
  "Benítez", "Medina", "Suárez", "Herrera", "Aguirre", "Pereyra", "Gutiérrez", "Giménez",
  "Molina", "Silva", "Castro", "Rojas", "Ortiz", "Núñez", "Luna", "Juárez", "Cabrera", "Ríos",
  "Ferreyra", "Godoy", "Morales", "Domínguez", "Moreno", "Peralta", "Vega", "Carrizo",
  "Quiroga", "Castillo", "Ledesma", "Muñoz", "Ojeda", "Ponce", "Vera", "Vázquez", "Villalba",
  "Cardozo", "Navarro", "Ramos", "Arias", "Coronel", "Córdoba", "Figueroa", "Correa", "Cáceres",
  "Vargas", "Maldonado", "Mansilla", "Farías", "Rivero", "Paz", "Miranda", "Roldán", "Méndez",
  "Lucero", "Cruz", "Hernández", "Agüero", "Páez", "Blanco", "Mendoza", "Barrios", "Escobar",
  "Ávila", "Soria", "Leiva", "Acuña", "Maidana", "Moyano", "Campos", "Olivera", "Duarte",
  "Soto", "Bravo", "Valdez", "Toledo", "Velázquez", "Montenegro", "Leguizamón", "Chávez",
  "Arce", "Fornerón", "Ñañez", "Zárate", "Gauna", "Insaurralde", "Mamani", "Chocobar", "Guzmán",
  "Bustos", "Argüello", "Güemes", "Lorca", "Zambrano", "Varela", "Rivera",
  // Italian, Basque, Irish, German, Polish, Armenian, Lebanese, Mapuche origins
  "Rossi", "Ferrari", "Russo", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco",
  "Costa", "Gallo", "Conti", "De Luca", "Mancini", "Lombardi", "Esposito", "D'Angelo", "D'Elía",
  "D'Alessandro", "Dell'Oro", "Di Stéfano", "Di María", "Lo Presti", "Echeverría", "Etcheverry",
  "Goicoechea", "Urquiza", "Irigoyen", "Aramburu", "Larrañaga", "Iturralde", "O'Connor",
  "O'Higgins", "O'Brien", "O'Gorman", "Kelly", "Walsh", "Müller", "Schmidt", "Fischer",
  "Weber", "Kowalski", "Nowak", "Kalaidjian", "Bogosian", "Haddad", "Saadi", "Namuncurá",
  "Catriel", "Ñancucheo", "Huenchul",
  // compound surnames
  "Sáenz Peña", "De la Fuente", "Del Valle", "Pérez Esquivel", "San Martín", "De la Rúa",
  "Martínez de Hoz", "Sánchez de Bustamante", "Ruiz Díaz", "Pérez Companc",
];

/**
 * Names that exercise CSV quoting and the protocol's escaping (commas, double quotes, CR/LF,
 * `;`, `|`, `:`). Only used with `--tricky RATE`; they replace the first or last name.
 */
// biome-ignore format: compact word list
const TRICKY_FIRST: readonly string[] = [
  'Juan "Pipo"', "Ana, María", 'María "Coca" José', "Luis\nAlberto", 'Néstor "El Flaco",',
  "Sofía|Luz", "Ramón; Jr.", '"', ",", "Ñ\r\nÑ",
];
// biome-ignore format: compact word list
const TRICKY_LAST: readonly string[] = [
  "Pérez, Jr.", 'De "La" Fuente', "Gómez\nSosa", "Ruiz; Díaz", "Paz|Luna", "Sosa: hijo",
  'O\'Connor "Chino"', "Vega\r\nRíos", "Álvarez\r", '""', "Fornerón,Ñañez",
];

/**
 * Python `csv.writer(quoting=QUOTE_MINIMAL)` quoting of one field with the default dialect:
 * quoted when it holds `,` `"` `\r` or `\n`, inner quotes doubled. (Python 3.11 with a custom
 * `lineterminator="\n"` would leave a lone `\r` unquoted and then could not read the file
 * back; the default dialect and this function always quote it.)
 */
export function csvField(value: string): string {
  if (/[",\r\n]/.test(value)) return `"${value.replaceAll('"', '""')}"`;
  return value;
}

/** A CSV line exactly as Python's csv module with QUOTE_MINIMAL writes it. */
export function csvLine(fields: readonly string[], eol = "\n"): string {
  // Python quotes a lone empty field (`""`) so that the row is not read back as empty.
  if (fields.length === 1 && fields[0] === "") return `""${eol}`;
  return fields.map(csvField).join(",") + eol;
}

// ---------------------------------------------------------------------------------------------
// Randomness

/** Seed of stream `stream` of agency `agency` for the dataset seed `seed`. */
function streamSeed(seed: number, agency: number, stream: number): number {
  return mix32(mix32(mix32(seed ^ 0x5bd1e995) ^ agency) + Math.imul(stream + 1, 0x9e3779b9));
}

/** A keyed permutation of 0..99,999,999 (4-round Feistel on two base-10,000 halves). */
class DocumentPermutation {
  private readonly keys: number[];
  constructor(seed: number) {
    this.keys = [0, 1, 2, 3].map((r) => mix32(mix32(seed ^ 0xd0c0) + Math.imul(r + 1, 0x85ebca6b)));
  }
  /** Writes the permuted value of `index` as two halves (hi, lo) into `out`. */
  apply(index: number, out: [number, number]): void {
    let l = Math.floor(index / 10000);
    let r = index - l * 10000;
    for (const k of this.keys) {
      const f = mix32((r ^ k) >>> 0) % 10000;
      const nl = r;
      r = (l + f) % 10000;
      l = nl;
    }
    out[0] = l;
    out[1] = r;
  }
}

// ---------------------------------------------------------------------------------------------
// Tables

/** Writes `v` (0..9999) as 4 ASCII digits at `pos`; returns the next position. */
function put4(buf: Buffer, pos: number, v: number): number {
  buf[pos] = 0x30 + Math.floor(v / 1000);
  buf[pos + 1] = 0x30 + (Math.floor(v / 100) % 10);
  buf[pos + 2] = 0x30 + (Math.floor(v / 10) % 10);
  buf[pos + 3] = 0x30 + (v % 10);
  return pos + 4;
}

/** Every calendar day between MIN_BIRTHDATE and MAX_BIRTHDATE, as `YYYY-MM-DD`. */
const DATES: readonly string[] = (() => {
  const out: string[] = [];
  const end = Date.UTC(2006, 11, 31);
  for (let t = Date.UTC(1940, 0, 1); t <= end; t += 86_400_000) {
    out.push(new Date(t).toISOString().slice(0, 10));
  }
  return out;
})();

// The plain name lists must never need quoting (the hot loop does not quote them).
for (const n of [...MALE, ...FEMALE, ...SURNAMES]) {
  if (csvField(n) !== n) throw new Error(`gen-data: name needs quoting: ${n}`);
}
const utf8 = (names: readonly string[]): Uint8Array[] => names.map((n) => Buffer.from(n, "utf8"));
const MALE_B = utf8(MALE);
const FEMALE_B = utf8(FEMALE);
/** Given names that can follow the first one (single words only). */
const MALE_SECOND_B = MALE_B.filter((_, i) => !MALE[i]!.includes(" "));
const FEMALE_SECOND_B = FEMALE_B.filter((_, i) => !FEMALE[i]!.includes(" "));
const SURNAMES_B = utf8(SURNAMES);
/** Surnames to draw from uniformly: the 20 most frequent 6 times, the next 30 three times. */
const SURNAME_TABLE_B = SURNAMES_B.flatMap((b, i) =>
  Array<Uint8Array>(i < 20 ? 6 : i < 50 ? 3 : 1).fill(b),
);
/** Quoted once here with csvField (the hot loop copies them as they are). */
const TRICKY_FIRST_B = utf8(TRICKY_FIRST.map(csvField));
const TRICKY_LAST_B = utf8(TRICKY_LAST.map(csvField));
/** Every birthdate as 10 ASCII bytes, back to back. */
const DATES_B: Uint8Array = Buffer.from(DATES.join(""), "latin1");
/** An upper bound of one row's size in bytes. */
const MAX_ROW_BYTES =
  3 *
    Math.max(
      ...[MALE_B, FEMALE_B, SURNAMES_B, TRICKY_FIRST_B, TRICKY_LAST_B].flat().map((b) => b.length),
    ) +
  32;

// ---------------------------------------------------------------------------------------------
// Generation

export interface AgencyRowsOptions {
  /** Agency number (1-based); selects the random streams. */
  agency: number;
  /** Rows to generate. */
  bets: number;
  /** Rows with number 7574 (0 ≤ winners ≤ bets). */
  winners: number;
  /** Dataset seed, uint32 (default 1). */
  seed?: number;
  /** CRLF line endings instead of LF. */
  crlf?: boolean;
  /** Fraction (0..1) of rows whose first or last name is a CSV-hostile one (default 0). */
  tricky?: number;
  /**
   * Index of this agency's first row in the document permutation (default
   * `(agency - 1) * bets`). generateDataset passes the rows of the agencies before it, so
   * documents are unique across the dataset.
   */
  documentOffset?: number;
}

export interface AgencyCounts {
  rows: number;
  winners: number;
}

function validateRowsOptions(o: AgencyRowsOptions): void {
  const int = (v: number, lo: number, hi: number) => Number.isSafeInteger(v) && v >= lo && v <= hi;
  if (!int(o.agency, 1, 2 ** 31 - 1)) throw new RangeError(`agency must be ≥ 1: ${o.agency}`);
  if (!int(o.bets, 0, DOCUMENT_SPACE)) throw new RangeError(`bets must be 0..${DOCUMENT_SPACE}`);
  if (!int(o.winners, 0, o.bets)) {
    throw new RangeError(`agency ${o.agency}: winners must be 0..${o.bets}, got ${o.winners}`);
  }
  if (o.seed !== undefined && !int(o.seed, 0, 0xffffffff)) {
    throw new RangeError(`seed must be an integer 0..4294967295: ${o.seed}`);
  }
  const t = o.tricky ?? 0;
  if (!(t >= 0 && t <= 1)) throw new RangeError(`tricky must be in 0..1: ${t}`);
  const offset = o.documentOffset ?? (o.agency - 1) * o.bets;
  if (!int(offset, 0, DOCUMENT_SPACE - o.bets)) {
    throw new RangeError(`documents exhausted: at most ${DOCUMENT_SPACE} rows in a dataset`);
  }
}

/**
 * The content of one agency file as a sequence of UTF-8 chunks of about 64 KiB (whole rows
 * only; each chunk is a fresh Buffer the caller may keep). `counts` is updated as rows are produced. Synchronous and allocation-light: the
 * caller decides where the chunks go.
 */
export function* agencyChunks(
  o: AgencyRowsOptions,
  counts: AgencyCounts = { rows: 0, winners: 0 },
): Generator<Buffer, AgencyCounts, undefined> {
  validateRowsOptions(o);
  const seed = (o.seed ?? 1) >>> 0;
  const tricky = o.tricky ?? 0;
  const rowRng = new Mulberry32(streamSeed(seed, o.agency, 0));
  const pickRng = new Mulberry32(streamSeed(seed, o.agency, 1));
  const trickyRng = new Mulberry32(streamSeed(seed, o.agency, 2));
  const perm = new DocumentPermutation(seed);
  const offset = o.documentOffset ?? (o.agency - 1) * o.bets;
  const doc: [number, number] = [0, 0];
  const nDates = DATES.length;
  const trickyThreshold = tricky * 4294967296;
  const crlf = o.crlf === true;

  let need = o.winners;
  let buf = Buffer.allocUnsafe(CHUNK_BYTES);
  let pos = 0;
  for (let i = 0; i < o.bets; i++) {
    const female = rowRng.next() < 0x80000000;
    const given = female ? FEMALE_B : MALE_B;
    const second = female ? FEMALE_SECOND_B : MALE_SECOND_B;
    let first = given[rowRng.below(given.length)]!;
    // ~60 % of people have a second given name ("Santiago Lionel", "María José Belén").
    let first2: Uint8Array | undefined;
    if (rowRng.next() < 0x9999999a) {
      const s = second[rowRng.below(second.length)]!;
      if (s !== first) first2 = s;
    }
    let last = SURNAME_TABLE_B[rowRng.below(SURNAME_TABLE_B.length)]!;
    const date = rowRng.below(nDates) * 10;
    let number = rowRng.below(9999);
    if (number >= WINNING_NUMBER) number++;

    // Algorithm S: exactly `winners` of the `bets` rows, each subset equally likely.
    const left = o.bets - i;
    if (need > 0 && (need >= left || pickRng.next() * left < need * 4294967296)) {
      number = WINNING_NUMBER;
      need--;
      counts.winners++;
    }
    if (tricky > 0 && trickyRng.next() < trickyThreshold) {
      const v = trickyRng.next();
      if (v & 1) {
        first = TRICKY_FIRST_B[(v >>> 1) % TRICKY_FIRST_B.length]!;
        first2 = undefined;
      } else {
        last = TRICKY_LAST_B[(v >>> 1) % TRICKY_LAST_B.length]!;
      }
    }
    perm.apply(offset + i, doc);

    // first_name,last_name,document,birthdate,number EOL
    for (let k = 0; k < first.length; k++) buf[pos++] = first[k]!;
    if (first2 !== undefined) {
      buf[pos++] = 0x20;
      for (let k = 0; k < first2.length; k++) buf[pos++] = first2[k]!;
    }
    buf[pos++] = 0x2c;
    for (let k = 0; k < last.length; k++) buf[pos++] = last[k]!;
    buf[pos++] = 0x2c;
    pos = put4(buf, pos, doc[0]);
    pos = put4(buf, pos, doc[1]);
    buf[pos++] = 0x2c;
    for (let k = 0; k < 10; k++) buf[pos++] = DATES_B[date + k]!;
    buf[pos++] = 0x2c;
    if (number >= 1000) buf[pos++] = 0x30 + Math.floor(number / 1000);
    if (number >= 100) buf[pos++] = 0x30 + (Math.floor(number / 100) % 10);
    if (number >= 10) buf[pos++] = 0x30 + (Math.floor(number / 10) % 10);
    buf[pos++] = 0x30 + (number % 10);
    if (crlf) buf[pos++] = 0x0d;
    buf[pos++] = 0x0a;
    counts.rows++;
    if (pos > CHUNK_BYTES - MAX_ROW_BYTES) {
      yield buf.subarray(0, pos);
      buf = Buffer.allocUnsafe(CHUNK_BYTES);
      pos = 0;
    }
  }
  if (pos > 0) yield buf.subarray(0, pos);
  return counts;
}

export interface AgencyFileOptions extends AgencyRowsOptions {
  /** File to write (created or replaced; written to `path + ".tmp"` and renamed). */
  path: string;
}

export interface AgencyFileResult {
  agency: number;
  path: string;
  rows: number;
  winners: number;
  bytes: number;
}

/** Writes one agency file as a stream with bounded memory; resolves with what it wrote. */
export async function generateAgencyFile(o: AgencyFileOptions): Promise<AgencyFileResult> {
  validateRowsOptions(o);
  const tmp = `${o.path}.tmp`;
  const out = createWriteStream(tmp, { highWaterMark: STREAM_HIGH_WATER });
  const counts: AgencyCounts = { rows: 0, winners: 0 };
  let failure: unknown;
  out.on("error", (e) => {
    failure ??= e;
  });
  try {
    for (const chunk of agencyChunks(o, counts)) {
      if (failure !== undefined) throw failure;
      if (!out.write(chunk)) await once(out, "drain");
    }
    out.end();
    await finished(out);
    if (failure !== undefined) throw failure;
    await rename(tmp, o.path);
  } catch (e) {
    out.destroy();
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
  return {
    agency: o.agency,
    path: o.path,
    rows: counts.rows,
    winners: counts.winners,
    bytes: out.bytesWritten,
  };
}

export interface DatasetOptions {
  /** Output directory (created if missing). */
  out: string;
  /** Number of agencies (files agency-1.csv .. agency-N.csv). */
  agencies: number;
  /** Rows per agency: one count for all, or one per agency. */
  bets: number | readonly number[];
  /** Winners per agency: one count for all, or one per agency (default 2,3,3,2,0 repeated). */
  winners?: number | readonly number[];
  seed?: number;
  crlf?: boolean;
  tricky?: number;
  /** Called after each agency file is complete. */
  onAgency?: (r: AgencyFileResult) => void;
}

export interface DatasetResult {
  seed: number;
  crlf: boolean;
  out: string;
  agencies: AgencyFileResult[];
  total: { agencies: number; rows: number; winners: number; bytes: number };
}

function perAgency(v: number | readonly number[], n: number, what: string): number[] {
  if (typeof v === "number") return Array.from({ length: n }, () => v);
  if (v.length !== n) throw new RangeError(`${what}: expected ${n} values, got ${v.length}`);
  return [...v];
}

/** The winners used for agency `agency` (1-based) when none are given. */
export function defaultWinners(agency: number): number {
  return DEFAULT_WINNERS_PATTERN[(agency - 1) % DEFAULT_WINNERS_PATTERN.length]!;
}

/** Resolves per-agency bets and winners and checks them against each other. */
export function planDataset(o: Pick<DatasetOptions, "agencies" | "bets" | "winners">): {
  bets: number[];
  winners: number[];
} {
  if (!Number.isSafeInteger(o.agencies) || o.agencies < 1) {
    throw new RangeError(`agencies must be an integer ≥ 1: ${o.agencies}`);
  }
  const bets = perAgency(o.bets, o.agencies, "bets");
  const winners =
    o.winners === undefined
      ? Array.from({ length: o.agencies }, (_, i) => defaultWinners(i + 1))
      : perAgency(o.winners, o.agencies, "winners");
  let total = 0;
  bets.forEach((b, i) => {
    if (!Number.isSafeInteger(b) || b < 0) throw new RangeError(`bets must be integers ≥ 0: ${b}`);
    const w = winners[i]!;
    if (!Number.isSafeInteger(w) || w < 0 || w > b) {
      throw new RangeError(`agency ${i + 1}: winners must be 0..${b} (its bets), got ${w}`);
    }
    total += b;
  });
  if (total > DOCUMENT_SPACE) {
    throw new RangeError(`at most ${DOCUMENT_SPACE} rows in a dataset (8-digit documents)`);
  }
  return { bets, winners };
}

/** Writes agency-1.csv .. agency-N.csv into `out`, one after the other. */
export async function generateDataset(o: DatasetOptions): Promise<DatasetResult> {
  const { bets, winners } = planDataset(o);
  const seed = o.seed ?? 1;
  await mkdir(o.out, { recursive: true });
  const results: AgencyFileResult[] = [];
  let offset = 0;
  for (let i = 0; i < o.agencies; i++) {
    const r = await generateAgencyFile({
      path: join(o.out, `agency-${i + 1}.csv`),
      agency: i + 1,
      bets: bets[i]!,
      winners: winners[i]!,
      seed,
      crlf: o.crlf ?? false,
      tricky: o.tricky ?? 0,
      documentOffset: offset,
    });
    offset += bets[i]!;
    results.push(r);
    o.onAgency?.(r);
  }
  return {
    seed,
    crlf: o.crlf ?? false,
    out: o.out,
    agencies: results,
    total: datasetTotal(results),
  };
}

/** The sums over a dataset's agency files. */
export function datasetTotal(agencies: readonly AgencyFileResult[]): DatasetResult["total"] {
  return {
    agencies: agencies.length,
    rows: agencies.reduce((s, r) => s + r.rows, 0),
    winners: agencies.reduce((s, r) => s + r.winners, 0),
    bytes: agencies.reduce((s, r) => s + r.bytes, 0),
  };
}

// ---------------------------------------------------------------------------------------------
// CLI

export const USAGE = `Usage: gen-data --out DIR [options]

Writes DIR/agency-1.csv .. DIR/agency-N.csv: synthetic bets, one per line,
"first_name,last_name,document,birthdate,number" (no header, UTF-8, quoted like
Python's csv module with QUOTE_MINIMAL). The same seed and options always give
byte-identical files. Winning rows have number ${WINNING_NUMBER}.

Options:
  --out DIR            output directory (required; created if missing)
  --agencies N         number of agencies (default 5)
  --bets M | M1,M2,..  rows per agency, one value or one per agency (default 10000)
  --course             rows per agency like the course's data: ${COURSE_BETS.join(", ")},
                       repeated (with the default winners, the course's files' shape)
  --winners W | W1,..  rows with number ${WINNING_NUMBER} per agency, one value or one per
                       agency (default ${DEFAULT_WINNERS_PATTERN.join(",")}, repeated, like the course data)
  --seed S             integer 0..4294967295 (default 1)
  --crlf               CRLF line endings (default LF)
  --tricky RATE        fraction 0..1 of rows given a CSV-hostile name (commas, quotes,
                       newlines, ; | :) to exercise quoting (default 0)
  --json               print a JSON summary instead of the text report
  -h, --help           show this help

Prints one line per agency (rows and winners written) and a total line.
Exit status: 0 done, 1 I/O error, 2 usage error.
`;

function parseCount(name: string, s: string): number {
  if (!/^\d+$/.test(s)) throw new UsageError(`--${name}: not a non-negative integer: '${s}'`);
  const v = Number(s);
  if (!Number.isSafeInteger(v)) throw new UsageError(`--${name}: too large: ${s}`);
  return v;
}

function parseCounts(name: string, s: string): number | number[] {
  if (!s.includes(",")) return parseCount(name, s);
  return s.split(",").map((p) => parseCount(name, p.trim()));
}

export interface CliOptions {
  help: boolean;
  json: boolean;
  dataset: Omit<DatasetOptions, "onAgency">;
}

/** The dataset's flags, the same in gen-data and run-local (which generates one too). */
export const DATASET_FLAGS = {
  agencies: { type: "string", short: "n" },
  bets: { type: "string", short: "b" },
  winners: { type: "string", short: "w" },
  seed: { type: "string", short: "s" },
} as const;

/** Parses the command line (without node and script). Throws UsageError on bad input. */
export function parseCli(argv: readonly string[]): CliOptions {
  const values = parseOptions(argv, {
    out: { type: "string", short: "o" },
    ...DATASET_FLAGS,
    crlf: { type: "boolean" },
    course: { type: "boolean" },
    tricky: { type: "string" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  const str = (k: string): string | undefined => values[k] as string | undefined;
  const help = values.help === true;
  if (help) return { help, json: false, dataset: { out: "", agencies: 0, bets: 0 } };
  const out = str("out");
  if (out === undefined || out === "") throw new UsageError("--out DIR is required");
  const agencies = parseCount("agencies", str("agencies") ?? "5");
  if (agencies < 1) throw new UsageError("--agencies must be ≥ 1");
  if (values.course === true && str("bets") !== undefined) {
    throw new UsageError("--course and --bets cannot be used together");
  }
  const bets =
    values.course === true ? courseBets(agencies) : parseCounts("bets", str("bets") ?? "10000");
  const w = str("winners");
  const winners = w === undefined ? undefined : parseCounts("winners", w);
  const seed = parseCount("seed", str("seed") ?? "1");
  if (seed > 0xffffffff) throw new UsageError("--seed must be 0..4294967295");
  const t = str("tricky");
  let tricky = 0;
  if (t !== undefined) {
    tricky = Number(t);
    if (t.trim() === "" || !(tricky >= 0 && tricky <= 1)) {
      throw new UsageError(`--tricky: not a fraction in 0..1: '${t}'`);
    }
  }
  const dataset = { out, agencies, bets, winners, seed, crlf: values.crlf === true, tricky };
  try {
    planDataset(dataset);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return { help: false, json: values.json === true, dataset };
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** Runs the CLI; resolves with the exit status. */
export async function main(
  argv: readonly string[],
  stdout: NodeJS.WritableStream = process.stdout,
  stderr: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  let cli: CliOptions;
  try {
    cli = parseCli(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    stderr.write(`gen-data: ${e.message}\nTry 'gen-data --help'.\n`);
    return 2;
  }
  if (cli.help) {
    stdout.write(USAGE);
    return 0;
  }
  const started = process.hrtime.bigint();
  try {
    const result = await generateDataset({
      ...cli.dataset,
      onAgency: (r) => {
        if (!cli.json) {
          stdout.write(
            `agency ${r.agency}: ${r.rows} rows, ${r.winners} winners -> ${r.path} (${mb(r.bytes)})\n`,
          );
        }
      },
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const t = result.total;
    if (cli.json) {
      stdout.write(`${JSON.stringify({ ...result, seconds })}\n`);
    } else {
      const rate = seconds > 0 ? (t.rows / seconds / 1e6).toFixed(2) : "-";
      stdout.write(
        `total: ${t.agencies} agencies, ${t.rows} rows, ${t.winners} winners, ${mb(t.bytes)} ` +
          `in ${seconds.toFixed(2)} s (${rate}M rows/s)\n`,
      );
    }
    return 0;
  } catch (e) {
    stderr.write(`gen-data: ${(e as Error).message}\n`);
    return 1;
  }
}

if (isMain(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
