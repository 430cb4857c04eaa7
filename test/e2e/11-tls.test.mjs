// Case 11 — TLS=1 ./generar-compose.sh: 3 batch agencies over mutual TLS with the
// certificates of `npm run certs` in .certs/ (each container mounts only its own); the
// draw and each agency's winners are as in plain text, and validar-echo-server.sh (plain
// netcat) still succeeds against the TLS server on the same port.

import assert from "node:assert/strict";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  allExited,
  check,
  clientNames,
  composeDown,
  composeUp,
  dockerSuite,
  followLogs,
  generateCompose,
  ROOT,
  run,
  writeAgencyFile,
  writeClientConfig,
  writeServerConfig,
} from "./lib/harness.mjs";
import { agencyRows, checkLottery, lotteryDone } from "./lib/lottery.mjs";

const CERTS = join(ROOT, ".certs");

let hadCerts = false;
dockerSuite(
  "case 11: mutual TLS in Docker",
  () => {
    test("3 agencies over mutual TLS: winners 2, 1, 0; the echo check still succeeds", async () => {
      const agencies = [
        { rows: 100, winners: [0, 99] },
        { rows: 100, winners: [50] },
        { rows: 100, winners: [] },
      ];
      writeServerConfig({ loggingLevel: "DEBUG" });
      writeClientConfig({ maxAmount: 10 });
      generateCompose(agencies.length, undefined, { tls: true });
      for (const [i, { rows, winners }] of agencies.entries()) {
        writeAgencyFile(i + 1, agencyRows(rows, winners));
      }
      composeUp();
      try {
        const names = clientNames(agencies.length);
        const { messages } = await followLogs("case11-tls", (m) => lotteryDone(m, names, 300), {
          settled: (m) => allExited(m, names),
        });
        checkLottery(
          messages,
          agencies.map((a) => a.winners.length),
          300,
        );
        const tls = messages.filter((m) => m.source === "server" && m.action === "config_tls");
        assert.equal(tls.length, 1, "the server logged its TLS setup");
        assert.equal(tls[0].fields.client_certificates, "required");
        const echo = run("sh", ["validar-echo-server.sh"], { timeout: 120_000 });
        assert.equal(echo.stdout.trim(), "action: test_echo_server | result: success");
      } finally {
        composeDown();
      }
    });
  },
  {
    setUp: () => {
      hadCerts = existsSync(CERTS);
      if (!hadCerts) check("node", ["dist/tools/certs.js", "--agencies", "3", "--out", ".certs"]);
    },
    tearDown: () => {
      if (!hadCerts) rmSync(CERTS, { recursive: true, force: true });
    },
  },
);
