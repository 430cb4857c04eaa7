// Every protocol failure is a value with a stable numeric code: it travels in REJECT/ERROR frames,
// it is what the logs print (`code: INVALID_DATE`), and tests assert on it.

export const ErrorCode = {
  // framing (connection-fatal)
  BAD_MAGIC: 1,
  UNSUPPORTED_VERSION: 2,
  FRAME_TOO_LARGE: 3,
  UNKNOWN_TYPE: 4,
  MALFORMED: 5,
  TRUNCATED_FRAME: 6,
  // session
  NOT_IDENTIFIED: 10,
  UNKNOWN_AGENCY: 11,
  AUTH_FAILED: 12,
  ALREADY_IDENTIFIED: 13,
  OUT_OF_SEQUENCE: 14,
  AGENCY_FINISHED: 15,
  COUNT_MISMATCH: 16,
  REPLACED: 17,
  TLS_REQUIRED: 18,
  // bet validation (REJECT of a whole batch)
  EMPTY_FIELD: 20,
  INVALID_NAME: 21,
  INVALID_DOCUMENT: 22,
  INVALID_DATE: 23,
  FUTURE_DATE: 24,
  INVALID_NUMBER: 25,
  EMPTY_BATCH: 26,
  // server conditions
  STORAGE_FAILURE: 30,
  SHUTTING_DOWN: 31,
  IDLE_TIMEOUT: 32,
  SLOW_READER: 33,
  TOO_MANY_CONNECTIONS: 34,
} as const;

export type ErrorCodeName = keyof typeof ErrorCode;
export type ErrorCodeValue = (typeof ErrorCode)[ErrorCodeName];

const NAMES = new Map<number, ErrorCodeName>(
  Object.entries(ErrorCode).map(([k, v]) => [v, k as ErrorCodeName]),
);

/**
 * A code read from a peer's REJECT/ERROR frame that is no ErrorCode member (a newer peer, or
 * garbage): carried as it came, never mistaken for a member, printed as `UNKNOWN_<n>`.
 */
export type UnknownCode = number & { readonly unknownCode: true };

/** A fault code as received: a known member or an UnknownCode (see `wireCode`). */
export type WireCode = ErrorCodeValue | UnknownCode;

/** The name a code is logged with. */
export type WireCodeName = ErrorCodeName | `UNKNOWN_${number}`;

export function isErrorCode(code: number): code is ErrorCodeValue {
  return NAMES.has(code);
}

/** Validates a code read off the wire. */
export function wireCode(code: number): WireCode {
  return isErrorCode(code) ? code : (code as UnknownCode);
}

export function errorName(code: number): WireCodeName {
  return NAMES.get(code) ?? `UNKNOWN_${code}`;
}

/**
 * A failure as a value: what went wrong (code) and a short human reason. Faults built here carry
 * an ErrorCode member; a fault received from a peer (`PeerFault`) may carry an UnknownCode.
 */
export interface Fault<C extends WireCode = ErrorCodeValue> {
  readonly kind: "fault";
  readonly code: C;
  readonly reason: string;
}

export type PeerFault = Fault<WireCode>;

export function fault<C extends WireCode = ErrorCodeValue>(code: C, reason: string): Fault<C> {
  return { kind: "fault", code, reason };
}

export function isFault(v: unknown): v is Fault {
  return typeof v === "object" && v !== null && (v as { kind?: unknown }).kind === "fault";
}

/** Why a process stops at its edge (config, fatal I/O, the agency's own conditions). */
export const FatalCode = {
  BAD_CONFIG: "BAD_CONFIG",
  CORRUPT_STORAGE: "CORRUPT_STORAGE",
  STORAGE_UNREACHABLE: "STORAGE_UNREACHABLE",
  SERVER_UNREACHABLE: "SERVER_UNREACHABLE",
  TLS_FAILED: "TLS_FAILED",
  LOST_BETS: "LOST_BETS",
  ABORTED: "ABORTED",
  INVALID_BET: "INVALID_BET",
  DATA_FILE: "DATA_FILE",
} as const;

export type FatalCodeName = keyof typeof FatalCode;

/** A QuinielaError's code: a process-edge condition or the server fault that ended the agency. */
export type QuinielaErrorCode = FatalCodeName | WireCodeName;

/** Thrown only at process edges (config, fatal I/O); carries a code like the protocol faults. */
export class QuinielaError extends Error {
  constructor(
    readonly code: QuinielaErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "QuinielaError";
  }
}
