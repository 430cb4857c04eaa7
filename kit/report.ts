// What to print when a test of live processes fails: the process's last lines and where its
// threads wait, and the agencies' known ways of getting stuck.

import { Action } from "../shared/src/actions.js";
import { logRe } from "./logs.js";
import type { ManagedProcess } from "./proc.js";
import { threadStates } from "./stats.js";

/**
 * Known failure pattern, spelled out for the hang message: an agency whose connection dropped
 * after its last bet was acknowledged reconnects, the server says OPEN with every bet committed,
 * and the agency asks for its winners without sending DONE again (the draw then never happens).
 */
export function diagnoseAgencies(
  agencies: readonly ManagedProcess[],
  bets: readonly number[],
): string {
  const out: string[] = [];
  agencies.forEach((a, i) => {
    if (!a.alive) return;
    let lastOpenAll = -1;
    a.lines.forEach((l, k) => {
      const m = logRe(Action.CONNECT, "success", " .*committed: (\\d+) \\| state: 0").exec(l);
      if (m && Number(m[1]) === bets[i]) lastOpenAll = k;
    });
    if (lastOpenAll < 0) return;
    const after = a.lines.slice(lastOpenAll + 1);
    if (!after.some((l) => logRe(Action.NOTIFICAR_FIN).test(l))) {
      out.push(
        `agency ${i + 1}: reconnected with state OPEN and all ${bets[i]} bets committed, then never sent DONE again (waits for a draw that needs its DONE)`,
      );
    }
  });
  return out.length ? `\nDIAGNOSIS: ${out.join("; ")}` : "";
}

/** Everything about a process worth printing when an assertion fails. */
export function tail(p: ManagedProcess, n = 15): string {
  return `${p.lines.slice(-n).join("\n")}\n${p.stderr}${p.alive ? threadStates(p.pid) : ""}`;
}
