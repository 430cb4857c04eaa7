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

export function errorName(code: number): string {
  return NAMES.get(code) ?? `UNKNOWN_${code}`;
}

/** A failure as a value: what went wrong (code) and a short human reason. */
export interface Fault {
  readonly kind: "fault";
  readonly code: ErrorCodeValue;
  readonly reason: string;
}

export function fault(code: ErrorCodeValue, reason: string): Fault {
  return { kind: "fault", code, reason };
}

export function isFault(v: unknown): v is Fault {
  return typeof v === "object" && v !== null && (v as { kind?: unknown }).kind === "fault";
}

/** Thrown only at process edges (config, fatal I/O); carries a code like the protocol faults. */
export class QuinielaError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "QuinielaError";
  }
}
