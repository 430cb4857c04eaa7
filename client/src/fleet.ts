// Many agencies from one process (a load generator): each agency is an ordinary Agency session
// (HELLO, pipelined batches, DONE, WINNERS wait=1) over its own connection, reading its own file
// DIR/agency-{N}.csv. A gate bounds how many stream at once, so memory does not grow with the
// number of agencies; the others either wait for their turn (no connection yet) or, done,
// wait for the draw on their connection (which the draw needs: it waits for every agency).

import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { Action } from "../../shared/src/actions.js";
import type { ClientConfig } from "../../shared/src/config.js";
import { QuinielaError } from "../../shared/src/errors.js";
import { fatal, type Lifecycle } from "../../shared/src/lifecycle.js";
import { type Fields, type Level, Logger, type Result, type Sink } from "../../shared/src/log.js";
import { Agency, type AgencyResult } from "./agency.js";
import { Gate } from "./gate.js";

/** Appends fixed fields (the agency's id) to every line, unless the line already has them. */
export class TaggedLogger extends Logger {
  constructor(
    level: Level,
    sink: Sink,
    private readonly tag: Fields,
  ) {
    super(level, sink);
  }

  override log(level: Level, action: string, result: Result, fields?: Fields): void {
    if (!this.enabled(level)) return;
    // the line's own fields first and winning; the tag's new keys appended
    super.log(level, action, result, { ...fields, ...this.tag, ...fields });
  }
}

/**
 * Logs an agency's outcome (the lines a single agency has always logged); true when some rows
 * of its file were invalid or refused.
 */
export function reportResult(log: Logger, cfg: ClientConfig, result: AgencyResult): boolean {
  log.info(Action.CONSULTA_GANADORES, "success", { cant_ganadores: result.winners.length });
  log.debug(Action.GANADORES, "success", {
    client_id: cfg.id,
    documentos: result.winners.join(" "),
  });
  if (result.invalidRows > 0 || result.rejectedBets > 0) {
    log.warn(Action.AGENCY, "fail", {
      client_id: cfg.id,
      bets_stored: result.sent,
      invalid_rows: result.invalidRows,
      rejected_bets: result.rejectedBets,
    });
    return true;
  }
  log.info(Action.AGENCY, "success", { client_id: cfg.id, bets_stored: result.sent });
  return false;
}

export interface FleetOptions {
  ids: number[];
  dataDir: string;
  /** Agencies streaming their files at the same time. */
  concurrency: number;
}

/** Runs every agency; resolves with true when some had data errors. Fatal errors exit 1. */
export async function runFleet(
  cfg: ClientConfig,
  opts: FleetOptions,
  log: Logger,
  sink: Sink,
  life: Lifecycle,
): Promise<boolean> {
  const files = opts.ids.map((id) => join(opts.dataDir, `agency-${id}.csv`));
  for (const f of files) {
    try {
      accessSync(f, constants.R_OK); // fail fast, before any agency connects
    } catch (err) {
      fatal(log, `cannot read data file ${f}: ${(err as NodeJS.ErrnoException).code}`);
    }
  }
  const gate = new Gate(opts.concurrency);
  const sessions = opts.ids.map((id, i) => {
    const c: ClientConfig = { ...cfg, id, dataFile: files[i]! };
    const alog = new TaggedLogger(cfg.logLevel, sink, { client_id: id });
    // 64 KB reads: with many agencies streaming, 256 KB buffers each would add up
    const agency = new Agency(c, alog, "file", { gate, readChunkBytes: 64 * 1024 });
    return { cfg: c, log: alog, agency };
  });
  life.onClose(async () => {
    for (const s of sessions) {
      const { hadSocket, hadFile } = s.agency.abort();
      if (hadSocket) log.info(Action.CLOSE_CONNECTION, "success", { client_id: s.cfg.id });
      if (hadFile)
        log.info(Action.CLOSE_FILE, "success", { client_id: s.cfg.id, path: s.cfg.dataFile });
    }
  });
  life.install();

  const started = Date.now();
  let dataErrors = 0;
  let stored = 0;
  await Promise.all(
    sessions.map(async (s) => {
      let result: AgencyResult;
      try {
        result = await s.agency.run();
      } catch (err) {
        if (life.isClosing) return new Promise<never>(() => {}); // SIGTERM: the lifecycle exits
        // The draw waits for every agency: without this one the others would wait forever.
        const msg =
          err instanceof QuinielaError ? err.message : String((err as Error)?.stack ?? err);
        s.log.error(Action.AGENCY, "fail", { reason: msg });
        for (const o of sessions) o.agency.abort();
        fatal(log, `agency ${s.cfg.id}: ${msg}`);
      }
      stored += result.sent;
      if (reportResult(s.log, s.cfg, result)) dataErrors++;
    }),
  );
  log.info(Action.AGENCIAS, dataErrors > 0 ? "fail" : "success", {
    agencies: sessions.length,
    bets_stored: stored,
    with_data_errors: dataErrors,
    seconds: ((Date.now() - started) / 1000).toFixed(2),
    max_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  });
  return dataErrors > 0;
}
