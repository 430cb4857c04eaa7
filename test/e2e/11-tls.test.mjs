// Case 11 — TLS=1 ./generar-compose.sh: 3 batch agencies over mutual TLS with the
// certificates of `npm run certs` in .certs/ (each container mounts only its own); the
// draw and each agency's winners are as in plain text, and validar-echo-server.sh (plain
// netcat) still succeeds against the TLS server on the same port.

import assert from "node:assert/strict";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { check, dockerSuite, ROOT, run, setUpProject, whileUp } from "./lib/harness.mjs";
import { followLottery, writeAgencies } from "./lib/lottery.mjs";

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
      setUpProject({
        clients: agencies.length,
        tls: true,
        server: { loggingLevel: "DEBUG" },
        client: { maxAmount: 10 },
      });
      writeAgencies(agencies);
      await whileUp(async () => {
        const messages = await followLottery(
          "case11-tls",
          agencies.map((a) => a.winners.length),
          300,
        );
        const tls = messages.filter((m) => m.source === "server" && m.action === "config_tls");
        assert.equal(tls.length, 1, "the server logged its TLS setup");
        assert.equal(tls[0].fields.client_certificates, "required");
        const echo = run("sh", ["validar-echo-server.sh"], { timeout: 120_000 });
        assert.equal(echo.stdout.trim(), "action: test_echo_server | result: success");
      });
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
