#!/usr/bin/env -S node --max-semi-space-size=2

// quiniela-server: the Lotería Nacional central server.

import { parseArgs } from "node:util";
import { Action } from "../../shared/src/actions.js";
import { loadServerConfig, readConfigText, redactUrl } from "../../shared/src/config.js";
import { QuinielaError } from "../../shared/src/errors.js";
import { closeDeadline, fatal, Lifecycle } from "../../shared/src/lifecycle.js";
import { Logger } from "../../shared/src/log.js";
import { Lottery } from "./lottery.js";
import { LotteryServer } from "./server.js";
import { openStore } from "./storage/open.js";
import type { BetStore } from "./storage/types.js";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: "string" } }, strict: true });
  const config = loadServerConfig(
    readConfigText(values.config ?? "./config.ini", values.config !== undefined),
    process.env,
  );
  const log = new Logger(config.loggingLevel);
  log.debug(Action.CONFIG, "success", {
    port: config.port,
    listen_backlog: config.listenBacklog,
    logging_level: config.loggingLevelText,
  });
  // A separate action: the course's tests read listen_backlog/logging_level from every `config` line.
  log.debug(Action.CONFIG_LOTTERY, "success", {
    agencies: config.agencies,
    storage: config.databaseUrl !== "" ? redactUrl(config.databaseUrl) : config.storagePath,
    sync: config.databaseUrl !== "" ? "commit" : config.sync,
  });

  // 8 s: within `docker compose down`'s 10 s grace, with room to write the log.
  const life = new Lifecycle(log, {
    deadlineMs: closeDeadline("SHUTDOWN_DEADLINE", process.env.SHUTDOWN_DEADLINE, 8000),
  });
  // A failed write of the file store is fatal (its state is only in this process); the
  // PostgreSQL store answers STORAGE_FAILURE instead and keeps going. The close waits a turn:
  // the agencies whose batches failed are told STORAGE_FAILURE first, not SHUTTING_DOWN.
  const onFatal = (err: Error) => {
    log.error(Action.STORAGE, "fail", { error: err.message });
    setImmediate(() => void life.shutdown(`storage failure: ${err.message}`, 1));
  };
  let server: LotteryServer | null = null;
  let lottery: Lottery | null = null;
  let store: BetStore | null = null;
  life.onClose(async () => {
    await life.step(
      () => `listener and ${plural(server?.connections ?? 0, "connection")}`,
      () => server?.close(),
    );
    lottery?.close();
    await life.step("storage", () => store?.close());
  });
  // Installed first: SIGTERM while the database is still being waited for exits cleanly too.
  life.install();
  store = await openStore(config, log, onFatal);
  lottery = await Lottery.open({
    agencies: config.agencies,
    secrets: config.secrets,
    store,
    log,
  });
  server = new LotteryServer(config, lottery, log, onFatal);
  try {
    await server.listen();
  } catch (err) {
    const where =
      config.listenFd !== null ? `inherited fd ${config.listenFd}` : `${config.ip}:${config.port}`;
    fatal(log, `cannot listen on ${where}: ${(err as Error).message}`);
  }
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

main().catch((err: unknown) => {
  const msg = err instanceof QuinielaError ? err.message : String((err as Error)?.stack ?? err);
  fatal(null, msg);
});
