// Which store: DATABASE_URL set → PostgreSQL (replicas may share it), else the file store.

import type { ServerConfig } from "../../../shared/src/config.js";
import type { Logger } from "../../../shared/src/log.js";
import { FileStore } from "./file-store.js";
import { PgStore } from "./pg-store.js";
import type { BetStore } from "./types.js";

export async function openStore(
  config: ServerConfig,
  log: Logger,
  onFatal: (err: Error) => void,
): Promise<BetStore> {
  if (config.databaseUrl !== "") {
    return PgStore.open({
      url: config.databaseUrl,
      agencies: config.agencies,
      log,
      poolSize: config.databasePoolSize,
      retryMs: config.databaseRetryMs,
    });
  }
  return FileStore.open({
    path: config.storagePath,
    sync: config.sync,
    agencies: config.agencies,
    log,
    onFatal,
  });
}
