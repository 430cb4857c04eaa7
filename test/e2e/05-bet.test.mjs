// Case 5 — single-bet agencies (course test_ej5, CLIENT_MODE=bet): each agency sends
// the bet of its NOMBRE/APELLIDO/DOCUMENTO/NACIMIENTO/NUMERO, logs apuesta_enviada, the
// server logs apuesta_almacenada with the same dni and numero; the draw follows and
// every agency exits 0.

import assert from "node:assert/strict";
import { test } from "node:test";
import { parse } from "yaml";
import {
  COMPOSE_FILE,
  clientNames,
  dockerSuite,
  exitCode,
  exitsOf,
  followClients,
  readRepoFile,
  setUpProject,
  storedBets,
  whileUp,
} from "./lib/harness.mjs";

/** The bets generar-compose.sh gave each agency: { client1: { DOCUMENTO, … }, … }. */
function betsInComposeFile() {
  const doc = parse(readRepoFile(COMPOSE_FILE));
  const bets = {};
  for (const [name, service] of Object.entries(doc.services)) {
    if (name === "server") continue;
    bets[name] = Object.fromEntries(
      service.environment.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]),
    );
  }
  return bets;
}

async function betRun(clients) {
  setUpProject({
    clients,
    mode: "bet",
    server: { loggingLevel: "DEBUG" },
    client: { loopAmount: 500, loopPeriod: "150ms" },
  });
  const bets = betsInComposeFile();
  await whileUp(async () => {
    const names = clientNames(clients);
    const { messages } = await followClients(
      `case5-bet-${clients}`,
      names,
      (m) =>
        m.filter((x) => x.source === "server" && x.action === "apuesta_almacenada").length >=
        clients,
    );

    const stored = messages.filter(
      (m) => m.source === "server" && m.action === "apuesta_almacenada",
    );
    for (const name of names) {
      const bet = bets[name];
      const sent = messages.filter((m) => m.source === name && m.action === "apuesta_enviada");
      assert.equal(sent.length, 1, `${name} logs apuesta_enviada once`);
      assert.equal(sent[0].result, "success");
      assert.equal(sent[0].fields.dni, bet.DOCUMENTO, `${name} sent its DOCUMENTO`);
      assert.equal(sent[0].fields.numero, bet.NUMERO, `${name} sent its NUMERO`);
      const atServer = stored.filter((m) => m.fields.dni === bet.DOCUMENTO);
      assert.equal(atServer.length, 1, `server logs apuesta_almacenada for dni ${bet.DOCUMENTO}`);
      assert.equal(atServer[0].result, "success");
      assert.equal(atServer[0].fields.numero, bet.NUMERO);
      assert.equal(exitsOf(messages).get(name), 0, `${name} exits 0`);
      assert.equal(exitCode(name), 0);
    }
    assert.equal(stored.length, clients, "one stored bet per agency");

    // The stored file holds exactly these bets, with the agency number in front.
    const rows = storedBets();
    const expected = names.map((name, i) => {
      const b = bets[name];
      return [String(i + 1), b.NOMBRE, b.APELLIDO, b.DOCUMENTO, b.NACIMIENTO, b.NUMERO];
    });
    assert.deepEqual(
      rows.map((r) => r.join("|")).sort(),
      expected.map((r) => r.join("|")).sort(),
      "bets.csv holds each agency's bet",
    );
  });
}

dockerSuite("case 5: single-bet agencies (CLIENT_MODE=bet)", () => {
  test("1 agency: apuesta_enviada and apuesta_almacenada with the same dni", () => betRun(1));
  test("3 agencies: each bet sent and stored once", () => betRun(3));
});
