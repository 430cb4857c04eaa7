#!/usr/bin/env node
// quiniela-agency: an agencia de quiniela (or, in echo mode, the Part 1 echo client).
// Exit status: 0 done (or SIGTERM), 1 fatal error, 3 finished but some rows of the data file
// were invalid or refused (each one was logged).

import { accessSync, constants } from "node:fs";
import { parseArgs } from "node:util";
import { loadClientConfig, readConfigText } from "../../shared/src/config.js";
import { QuinielaError } from "../../shared/src/errors.js";
import { fatal, Lifecycle } from "../../shared/src/lifecycle.js";
import { Logger } from "../../shared/src/log.js";
import { Agency } from "./agency.js";
import { EchoClient } from "./echo.js";

export const EXIT_DATA_ERRORS = 3;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: "string" } }, strict: true });
  const cfg = loadClientConfig(
    readConfigText(values.config ?? "./config.yaml", values.config !== undefined),
    process.env,
  );
  const log = new Logger(cfg.logLevel);
  log.info("config", "success", {
    client_id: cfg.id,
    server_address: cfg.serverAddress,
    loop_amount: cfg.loopAmount,
    loop_period: cfg.loopPeriodText,
    log_level: cfg.logLevelText,
  });
  const life = new Lifecycle(log, { deadlineMs: 5000 });

  if (cfg.mode === "echo") {
    const echo = new EchoClient(cfg, log);
    life.onClose(async () => {
      if (echo.abort()) log.info("close_connection", "success", { client_id: cfg.id });
    });
    life.install();
    await echo.run();
    if (!life.isClosing) life.exit(0);
    return;
  }

  if (cfg.mode === "batch") {
    try {
      accessSync(cfg.dataFile, constants.R_OK); // fail fast, before waiting for the server
    } catch (err) {
      fatal(log, `cannot read data file ${cfg.dataFile}: ${(err as NodeJS.ErrnoException).code}`);
    }
  }
  const agency = new Agency(cfg, log, cfg.mode === "bet" ? "env" : "file");
  life.onClose(async () => {
    const { hadSocket, hadFile } = agency.abort();
    if (hadSocket) log.info("close_connection", "success", { client_id: cfg.id });
    if (hadFile) log.info("close_file", "success", { client_id: cfg.id, path: cfg.dataFile });
  });
  life.install();
  let result: Awaited<ReturnType<Agency["run"]>>;
  try {
    result = await agency.run();
  } catch (err) {
    if (life.isClosing) return; // SIGTERM: the lifecycle exits
    const msg = err instanceof QuinielaError ? err.message : String((err as Error)?.stack ?? err);
    log.error("agency", "fail", { client_id: cfg.id, reason: msg });
    fatal(log, msg);
  }
  log.info("consulta_ganadores", "success", { cant_ganadores: result.winners.length });
  log.debug("ganadores", "success", { client_id: cfg.id, documentos: result.winners.join(" ") });
  if (result.invalidRows > 0 || result.rejectedBets > 0) {
    log.warn("agency", "fail", {
      client_id: cfg.id,
      bets_stored: result.sent,
      invalid_rows: result.invalidRows,
      rejected_bets: result.rejectedBets,
    });
    life.exit(EXIT_DATA_ERRORS);
  }
  log.info("agency", "success", { client_id: cfg.id, bets_stored: result.sent });
  life.exit(0);
}

main().catch((err: unknown) => {
  const msg = err instanceof QuinielaError ? err.message : String((err as Error)?.stack ?? err);
  fatal(null, msg);
});
