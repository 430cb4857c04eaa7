// Lottery scenarios shared by cases 7 and 8: generated agency files with known
// winners, and the checks of a whole run (bets received, one draw, winners per agency).

import assert from "node:assert/strict";
import {
  allExited,
  betsReceived,
  clientNames,
  exitCode,
  exitsOf,
  failures,
  show,
} from "./harness.mjs";

const WINNING_NUMBER = 7574;

/** `rows` bets; those at the indexes in `winners` play the winning number. */
export function agencyRows(rows, winners) {
  return Array.from({ length: rows }, (_, i) => {
    const number = winners.includes(i) ? WINNING_NUMBER : i < WINNING_NUMBER ? i : i + 1;
    return `Name,Surname,${String(i).padStart(8, "0")},2000-01-01,${number}`;
  });
}

/** Checks a whole lottery run; `expected` = winners per agency (index 0 = agency 1). */
export function checkLottery(messages, expected, totalBets) {
  const names = clientNames(expected.length);
  assert.deepEqual(failures(messages), [], `no operation may fail:\n${show(failures(messages))}`);

  const server = messages.filter((m) => m.source === "server");
  const draws = server.filter((m) => m.action === "sorteo");
  assert.equal(draws.length, 1, "the server logs sorteo exactly once");
  assert.equal(draws[0].result, "success");
  const drawAt = server.indexOf(draws[0]);
  const received = server.filter((m) => m.action === "apuesta_recibida");
  assert.ok(
    received.every((m) => server.indexOf(m) < drawAt),
    "every batch is received before the draw (server log order)",
  );
  const total = received.reduce((a, m) => a + Number(m.fields.cantidad), 0);
  assert.equal(total, totalBets, "the cantidad values add up to every bet");

  const exits = exitsOf(messages);
  for (const [i, name] of names.entries()) {
    const answers = messages.filter(
      (m) => m.source === name && m.action === "consulta_ganadores" && m.result === "success",
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
  assert.ok(!exits.has("server"), "the server keeps running");
}

/** End condition of a lottery run: every client exited, every bet received, the draw logged. */
export function lotteryDone(messages, names, totalBets) {
  return (
    allExited(messages, names) &&
    betsReceived(messages) >= totalBets &&
    messages.some((m) => m.source === "server" && m.action === "sorteo")
  );
}
