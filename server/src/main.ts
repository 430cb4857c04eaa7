#!/usr/bin/env -S node --max-semi-space-size=2
// quiniela-server: the Lotería Nacional central server.

import { parseArgs } from "node:util";
import { loadServerConfig, readConfigText } from "../../shared/src/config.js";
import { QuinielaError } from "../../shared/src/errors.js";
import { fatal, Lifecycle } from "../../shared/src/lifecycle.js";
import { Logger } from "../../shared/src/log.js";
import { Lottery } from "./lottery.js";
import { LotteryServer } from "./server.js";
import { BetStore } from "./storage.js";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: "string" } }, strict: true });
  const config = loadServerConfig(
    readConfigText(values.config ?? "./config.ini", values.config !== undefined),
    process.env,
  );
  const log = new Logger(config.loggingLevel);
  log.debug("config", "success", {
    port: config.port,
    listen_backlog: config.listenBacklog,
    logging_level: config.loggingLevelText,
  });
  // A separate action: the course's tests read listen_backlog/logging_level from every `config` line.
  log.debug("config_lottery", "success", {
    agencies: config.agencies,
    storage: config.storagePath,
    sync: config.sync,
  });

  const life = new Lifecycle(log, { deadlineMs: 8000 });
  const store = await BetStore.open(config.storagePath, config.sync, log);
  const lottery = await Lottery.open({
    agencies: config.agencies,
    secrets: config.secrets,
    store,
    sync: config.sync,
    log,
  });
  const onFatal = (err: Error) => {
    log.error("storage", "fail", { error: err.message });
    void life.shutdown(`storage failure: ${err.message}`, 1);
  };
  const server = new LotteryServer(config, lottery, log, onFatal);
  life.onClose(async () => {
    await server.close();
    await store.close();
    log.info("close_file", "success", { path: config.storagePath });
    await lottery.close();
    log.info("close_file", "success", { path: `${config.storagePath}.state` });
  });
  life.install();
  try {
    await server.listen();
  } catch (err) {
    fatal(log, `cannot listen on ${config.ip}:${config.port}: ${(err as Error).message}`);
  }
}

main().catch((err: unknown) => {
  const msg = err instanceof QuinielaError ? err.message : String((err as Error)?.stack ?? err);
  fatal(null, msg);
});
