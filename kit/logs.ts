// Reading the programs' log lines (`date time LEVEL action: a | result: r | k: v | ...`), by the
// action names of shared/src/actions.ts: one parser for the tools and the tests, regular
// expressions for the lines a test waits for, and counting and waiting on a process's lines.

import { Action, type ActionName } from "../shared/src/actions.js";
import type { ManagedProcess } from "./proc.js";

export interface LogLine {
  level: string;
  action: string;
  result: string;
  /** The details after `result`, by key. */
  fields: Record<string, string>;
}

const RESULTS = new Set(["success", "fail", "in_progress"]);

/**
 * Parses a log line with the course's rules: the message from `action:` on, split on `|`, each
 * part a key and the value after its last `:`. null for a line that is not a log message (no
 * `action:`); a message that breaks those rules (a part without a colon, an unknown result) is
 * null too, or with `strict` an error (the course's parser would fail on it).
 */
export function parseLogLine(line: string, strict = false): LogLine | null {
  const at = line.indexOf("action:");
  if (at < 0) return null;
  const fields: Record<string, string> = {};
  for (const part of line.slice(at).split("|")) {
    const c = part.lastIndexOf(":");
    if (c < 0) {
      if (strict) throw new Error(`detail without colon in ${line}`);
      return null;
    }
    fields[part.slice(0, c).trim()] = part.slice(c + 1).trim();
  }
  const { action = "", result = "", ...rest } = fields;
  if (!RESULTS.has(result)) {
    if (strict) throw new Error(`bad result in ${line}`);
    return null;
  }
  return { level: line.slice(0, at).trim().split(/\s+/)[2] ?? "", action, result, fields: rest };
}

/**
 * The messages of `action` in `lines` (parsed strictly), each as its details with `action` and
 * `result`.
 */
export function actions(lines: readonly string[], action: string): Array<Record<string, string>> {
  const out: Array<Record<string, string>> = [];
  for (const l of lines) {
    const m = parseLogLine(l, true);
    if (m?.action === action) out.push({ action: m.action, result: m.result, ...m.fields });
  }
  return out;
}

/**
 * Matches `action: A | result: R` followed by `rest` (regular-expression source, as `result`
 * may be: "\\w+", "(success|fail)").
 */
export function logRe(action: ActionName, result = "\\w+", rest = "", flags = ""): RegExp {
  return new RegExp(`action: ${action} \\| result: ${result}${rest}`, flags);
}

/** The server's lines of a batch made durable, an agency's DONE taken, and the draw. */
export const ACKED = logRe(Action.APUESTA_RECIBIDA, "success");
export const DONE = logRe(Action.AGENCY_DONE, "success");
export const DRAWN = logRe(Action.SORTEO, "success");

/** The server's `listening` line; group 1 is the port. */
export const listeningRe = logRe(Action.ACCEPT_CONNECTIONS, "in_progress", " \\| port: (\\d+)");

/** Number of log lines of `p` matching `re`. */
export function count(p: ManagedProcess, re: RegExp): number {
  let n = 0;
  for (const l of p.lines) if (re.test(l)) n++;
  return n;
}

/**
 * Resolves once `p` has logged `n` lines matching `re`, or `stop()` turns true, or `p` exited;
 * rejects after `timeoutMs` (a hang guard). Resolves with the number of matching lines.
 */
export function waitCount(
  p: ManagedProcess,
  re: RegExp,
  n: number,
  timeoutMs: number,
  stop: () => boolean = () => false,
): Promise<number> {
  return new Promise((resolve, reject) => {
    let seen = 0;
    let scanned = 0;
    const check = (): boolean => {
      for (; scanned < p.lines.length; scanned++) if (re.test(p.lines[scanned]!)) seen++;
      if (seen >= n || stop() || !p.alive) {
        finish();
        resolve(seen);
        return true;
      }
      return false;
    };
    const off = p.onStdoutLine(() => setImmediate(check));
    const timer = setInterval(check, 20);
    const guard = setTimeout(() => {
      finish();
      reject(new Error(`hang guard: ${seen}/${n} lines matching ${re} after ${timeoutMs}ms`));
    }, timeoutMs);
    const finish = () => {
      clearInterval(timer);
      clearTimeout(guard);
      off();
    };
    check();
  });
}

/** The documents an agency logged as its winners (needs CLI_LOG_LEVEL=DEBUG), sorted. */
export function loggedWinners(p: ManagedProcess): string[] | null {
  const line = p.lines.find((l) => logRe(Action.GANADORES, "success").test(l));
  if (!line) return null;
  const m = /documentos: ?(.*)$/.exec(line);
  const docs = (m?.[1] ?? "").trim();
  return docs === "" ? [] : docs.split(" ").sort();
}

/** The winner count of an agency's first `consulta_ganadores | success` line. */
export function loggedWinnerCount(p: ManagedProcess): number | null {
  const re = logRe(Action.CONSULTA_GANADORES, "success", " \\| cant_ganadores: (\\d+)");
  const m = re.exec(p.lines.find((l) => logRe(Action.CONSULTA_GANADORES, "success").test(l)) ?? "");
  return m ? Number(m[1]) : null;
}
