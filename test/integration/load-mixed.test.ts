// Load: 500 useless or hostile connections (idle, or trickling a HELLO) held open while five
// agencies ingest. The agencies finish with the right winners, the
// server cuts the others with a log line each, and its memory stays bounded.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { actions } from "../../kit/logs.js";
import { stop } from "../../kit/proc.js";
import { cleanup, startAgency, startServer, tempDir } from "../../kit/programs.js";
import { Action } from "../../shared/src/actions.js";
import { encodeHello } from "../../shared/src/protocol/messages.js";
import { generateDataset } from "../../tools/gen-data.js";

function peakRssKb(pid: number): number {
  const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0);
}

describe("load with a mix of hostile connections", () => {
  const dirs: string[] = [];
  after(() => dirs.forEach(cleanup));

  test("500 idle and trickling connections while 5 agencies ingest", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const winners = [2, 3, 3, 2, 0];
    await generateDataset({ out: dir, agencies: 5, bets: 20_000, winners, seed: 11 });
    const server = await startServer(
      {
        AGENCIES: "5",
        LOGGING_LEVEL: "INFO",
        HELLO_TIMEOUT: "2s",
        IDLE_TIMEOUT: "3s",
        SERVER_LISTEN_BACKLOG: "1024",
      },
      dir,
    );
    const port = server.port;
    const socks: Socket[] = [];
    const open = (onConnect: (s: Socket) => void): void => {
      const s = connect({ host: "127.0.0.1", port });
      s.on("error", () => undefined);
      s.on("connect", () => onConnect(s));
      socks.push(s);
    };
    // 250 idle: connect and say nothing
    for (let i = 0; i < 250; i++) open(() => undefined);
    // 250 trickling: a HELLO one byte every 250 ms (never complete in time).
    // (A peer that never reads its replies is in hostile.test.ts.)
    const hello = encodeHello(1, { agency: 99, secret: "" });
    const timers: NodeJS.Timeout[] = [];
    for (let i = 0; i < 250; i++) {
      open((s) => {
        let k = 0;
        timers.push(
          setInterval(() => {
            if (k < hello.length && !s.destroyed) s.write(hello.subarray(k, ++k));
          }, 250),
        );
      });
    }
    assert.equal(socks.length, 500);

    const agencies = [1, 2, 3, 4, 5].map((i) =>
      startAgency(
        i,
        port,
        { CLI_DATA_FILE: join(dir, `agency-${i}.csv`), CLI_BATCH_MAXAMOUNT: "50" },
        dir,
      ),
    );
    const codes = await Promise.all(agencies.map((a) => a.code));
    assert.deepEqual(codes, [0, 0, 0, 0, 0], agencies.map((a) => a.stderr).join("\n"));
    assert.deepEqual(
      agencies.map((a) => Number(actions(a.lines, Action.CONSULTA_GANADORES)[0]?.cant_ganadores)),
      winners,
    );
    // the useless connections are cut by the server's limits, each with a log line
    await server.waitFor(/reason: no data in time/, 15_000);
    await server.waitFor(
      /who: unidentified \| code: IDLE_TIMEOUT \| reason: no HELLO in time/,
      15_000,
    );
    const rssKb = peakRssKb(server.child.pid!);
    process.stdout.write(
      `# load: 500 extra connections; server peak RSS ${(rssKb / 1024).toFixed(1)} MB\n`,
    );
    assert.ok(rssKb < 250 * 1024, `server peak RSS ${rssKb} kB`);
    for (const t of timers) clearInterval(t);
    for (const s of socks) s.destroy();
    assert.equal(await stop(server), 0);
    const rows = readFileSync(join(dir, "bets.csv"), "utf8").split("\r\n").length - 1;
    assert.equal(rows, 100_000);
  });
});
