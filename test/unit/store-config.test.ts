// Choosing the store: DATABASE_URL (environment or config.ini) selects PostgreSQL; unset, the
// file store. Its password never appears in logs or messages.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadServerConfig, redactUrl } from "../../shared/src/config.js";

describe("store configuration", () => {
  it("no DATABASE_URL: the file store, as before", () => {
    const c = loadServerConfig("", {});
    assert.equal(c.databaseUrl, "");
    assert.equal(c.storagePath, "./bets.csv");
    assert.equal(c.databasePoolSize, 8);
    assert.equal(c.databaseRetryMs, 30_000);
  });

  it("DATABASE_URL from config.ini, overridden by the environment; pool and retry keys", () => {
    const ini =
      "[DEFAULT]\nDATABASE_URL = postgres://a:b@db:5432/x\nDATABASE_POOL_SIZE = 4\nDATABASE_RETRY = 5s\n";
    const c = loadServerConfig(ini, {});
    assert.equal(c.databaseUrl, "postgres://a:b@db:5432/x");
    assert.equal(c.databasePoolSize, 4);
    assert.equal(c.databaseRetryMs, 5000);
    const e = loadServerConfig(ini, { DATABASE_URL: "postgresql://u@127.0.0.1:5433/y" });
    assert.equal(e.databaseUrl, "postgresql://u@127.0.0.1:5433/y");
  });

  it("a malformed URL is a config error that does not print the password", () => {
    assert.throws(
      () => loadServerConfig("", { DATABASE_URL: "mysql://u:hunter2@h/db" }),
      (e: Error) => /DATABASE_URL must look like/.test(e.message) && !e.message.includes("hunter2"),
    );
  });

  it("redactUrl hides the password only", () => {
    assert.equal(redactUrl("postgres://u:p%40ss@h:5432/db"), "postgres://u:***@h:5432/db");
    assert.equal(redactUrl("postgres://u@h/db"), "postgres://u@h/db");
    assert.equal(redactUrl("postgres://h/db"), "postgres://h/db");
  });
});
