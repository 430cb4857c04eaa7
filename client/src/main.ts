#!/usr/bin/env -S node --max-semi-space-size=2

// quiniela-agency: an agencia de quiniela (or, in echo mode, the Part 1 echo client).
// `--agencies 1-1000 --data DIR [--concurrency N]` runs many agencies from this one process
// (load generator), each reading DIR/agency-{N}.csv. A small young generation (the shebang's
// flag, as for the server) keeps that mode's peak memory down: ~90 MB instead of ~120 MB for
// 1,000 agencies.
// Exit status: 0 done (or SIGTERM), 1 fatal error, 3 finished but some rows of the data file
// were invalid or refused (each one was logged).

import { accessSync, constants } from "node:fs";
import { parseArgs } from "node:util";
import { Action } from "../../shared/src/actions.js";
import { loadClientConfig, parseAgencyIds, readConfigText } from "../../shared/src/config.js";
import { FatalCode, QuinielaError } from "../../shared/src/errors.js";
import { fatal, Lifecycle } from "../../shared/src/lifecycle.js";
import { BufferedSink, Logger } from "../../shared/src/log.js";
import { Agency } from "./agency.js";
import { EchoClient } from "./echo.js";
import { reportResult, runFleet } from "./fleet.js";

export const EXIT_DATA_ERRORS = 3;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: "string" },
      agencies: { type: "string" },
      data: { type: "string" },
      concurrency: { type: "string" },
    },
    strict: true,
  });
  const cfg = loadClientConfig(
    readConfigText(values.config ?? "./config.yaml", values.config !== undefined),
    process.env,
  );
  if (values.agencies === undefined && (values.data ?? values.concurrency) !== undefined) {
    throw new QuinielaError(FatalCode.BAD_CONFIG, "--data and --concurrency go with --agencies");
  }
  const fleet = values.agencies !== undefined ? parseFleetArgs(values, cfg.mode) : null;
  const sink = new BufferedSink(1);
  const log = new Logger(cfg.logLevel, sink);
  log.info(Action.CONFIG, "success", {
    client_id: values.agencies ?? cfg.id,
    server_address: cfg.serverAddress,
    loop_amount: cfg.loopAmount,
    loop_period: cfg.loopPeriodText,
    log_level: cfg.logLevelText,
  });
  const life = new Lifecycle(log, { deadlineMs: 5000 });

  if (fleet) {
    const dataErrors = await runFleet(cfg, fleet, log, sink, life);
    if (!life.isClosing) life.exit(dataErrors ? EXIT_DATA_ERRORS : 0);
    return;
  }

  if (cfg.mode === "echo") {
    const echo = new EchoClient(cfg, log);
    life.onClose(async () => {
      if (echo.abort()) log.info(Action.CLOSE_CONNECTION, "success", { client_id: cfg.id });
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
    if (hadSocket) log.info(Action.CLOSE_CONNECTION, "success", { client_id: cfg.id });
    if (hadFile) log.info(Action.CLOSE_FILE, "success", { client_id: cfg.id, path: cfg.dataFile });
  });
  life.install();
  let result: Awaited<ReturnType<Agency["run"]>>;
  try {
    result = await agency.run();
  } catch (err) {
    if (life.isClosing) return; // SIGTERM: the lifecycle exits
    const msg = err instanceof QuinielaError ? err.message : String((err as Error)?.stack ?? err);
    log.error(Action.AGENCY, "fail", { client_id: cfg.id, reason: msg });
    fatal(log, msg);
  }
  life.exit(reportResult(log, cfg, result) ? EXIT_DATA_ERRORS : 0);
}

function parseFleetArgs(
  values: { agencies?: string; data?: string; concurrency?: string },
  mode: string,
): { ids: number[]; dataDir: string; concurrency: number } {
  if (mode !== "batch") {
    throw new QuinielaError(
      FatalCode.BAD_CONFIG,
      `--agencies runs batch agencies, not mode ${mode}`,
    );
  }
  const concurrency = Number(values.concurrency ?? "32");
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new QuinielaError(
      FatalCode.BAD_CONFIG,
      `--concurrency must be an integer ≥ 1, got "${values.concurrency}"`,
    );
  }
  return {
    ids: parseAgencyIds(values.agencies!),
    dataDir: values.data ?? "./.data",
    concurrency,
  };
}

main().catch((err: unknown) => {
  const msg = err instanceof QuinielaError ? err.message : String((err as Error)?.stack ?? err);
  fatal(null, msg);
});
