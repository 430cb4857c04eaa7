// Lottery scenarios shared by cases 7, 8, 9 and 10: generated agency files with known
// winners, and the checks of a whole run (bets received, one draw, winners per agency),
// with one server or with several replicas (`servers`).

import assert from "node:assert/strict";
import { Action } from "../../../dist/shared/src/actions.js";
import { LOTTERY_WINNER_NUMBER as WINNING_NUMBER } from "../../../dist/shared/src/bet.js";
import {
  allExited,
  betsReceived,
  clientNames,
  exitCode,
  exitsOf,
  failures,
  followLogs,
  show,
  writeAgencyFile,
} from "./harness.mjs";

/** `rows` bets; those at the indexes in `winners` play the winning number. */
export function agencyRows(rows, winners) {
  return Array.from({ length: rows }, (_, i) => {
    const number = winners.includes(i) ? WINNING_NUMBER : i < WINNING_NUMBER ? i : i + 1;
    return `Name,Surname,${String(i).padStart(8, "0")},2000-01-01,${number}`;
  });
}

/** Writes .data/agency-N.csv for each agency { rows, winners } (agency 1 first). */
export function writeAgencies(agencies) {
  for (const [i, { rows, winners }] of agencies.entries()) {
    writeAgencyFile(i + 1, agencyRows(rows, winners));
  }
}

/**
 * Follows the logs (followLogs `name`, with `options` such as cwd and timeout) until the
 * lottery of `expected.length` agencies and `totalBets` bets is done, or every agency has
 * exited and the logs settled; then checks the run (checkLottery, one server). Returns the
 * messages.
 */
export async function followLottery(name, expected, totalBets, options = {}) {
  const names = clientNames(expected.length);
  const { messages } = await followLogs(name, (m) => lotteryDone(m, names, totalBets), {
    ...options,
    settled: (m) => allExited(m, names),
  });
  checkLottery(messages, expected, totalBets);
  return messages;
}

/**
 * Checks a whole lottery run; `expected` = winners per agency (index 0 = agency 1).
 * `servers`: the server containers (replicas: server1..N), which together log one sorteo
 * and whose cantidad values add up to every bet. `killed`: replicas killed on purpose
 * (SIGKILL): they must have exited 137, and as one may die between a commit and its log
 * line, the cantidad values may then fall short of every bet (never exceed it): the
 * caller checks the stored bets themselves.
 */
export function checkLottery(
  messages,
  expected,
  totalBets,
  { servers = ["server"], killed = [] } = {},
) {
  const names = clientNames(expected.length);
  assert.deepEqual(failures(messages), [], `no operation may fail:\n${show(failures(messages))}`);

  const fromServers = messages.filter((m) => servers.includes(m.source));
  const draws = fromServers.filter((m) => m.action === Action.SORTEO);
  assert.equal(draws.length, 1, `the server(s) log sorteo exactly once:\n${show(draws)}`);
  assert.equal(draws[0].result, "success");
  // Each container's lines keep their order; the drawing one got every batch it took first.
  const drawer = fromServers.filter((m) => m.source === draws[0].source);
  const drawAt = drawer.indexOf(draws[0]);
  assert.ok(
    drawer.every((m) => m.action !== Action.APUESTA_RECIBIDA || drawer.indexOf(m) < drawAt),
    "every batch is received before the draw (server log order)",
  );
  const received = fromServers.filter((m) => m.action === Action.APUESTA_RECIBIDA);
  const total = received.reduce((a, m) => a + Number(m.fields.cantidad), 0);
  if (killed.length === 0) {
    assert.equal(total, totalBets, "the cantidad values add up to every bet");
  } else {
    assert.ok(total <= totalBets, `the cantidad values (${total}) exceed the bets (${totalBets})`);
  }

  const exits = exitsOf(messages);
  for (const [i, name] of names.entries()) {
    const answers = messages.filter(
      (m) => m.source === name && m.action === Action.CONSULTA_GANADORES && m.result === "success",
    );
    assert.equal(answers.length, 1, `${name} logs consulta_ganadores once`);
    assert.equal(
      answers[0].fields.cant_ganadores,
      String(expected[i]),
      `${name} should have ${expected[i]} winner(s)`,
    );
    assert.equal(exits.get(name), 0, `${name} exits 0`);
    assert.equal(exitCode(name), 0, `${name}: State.ExitCode`);
  }
  for (const server of servers) {
    if (killed.includes(server)) {
      assert.equal(exitCode(server), 137, `${server} was killed (SIGKILL: 137)`);
    } else {
      assert.ok(!exits.has(server), `${server} keeps running`);
      assert.equal(exitCode(server), null, `${server} is running`);
    }
  }
}

/** End condition of a lottery run: every client exited, every bet received, the draw logged. */
export function lotteryDone(messages, names, totalBets, servers = ["server"]) {
  return (
    allExited(messages, names) &&
    betsReceived(messages, servers) >= totalBets &&
    messages.some((m) => servers.includes(m.source) && m.action === Action.SORTEO)
  );
}
