// Part 1 echo client: `loop.amount` times connect, send one line, read its echo, wait `loop.period`.

import { createConnection, type Socket } from "node:net";
import { Action } from "../../shared/src/actions.js";
import { Rotation } from "../../shared/src/address.js";
import type { ClientConfig } from "../../shared/src/config.js";
import { FatalCode, QuinielaError } from "../../shared/src/errors.js";
import type { Logger } from "../../shared/src/log.js";
import { Backoff, sleep } from "../../shared/src/net.js";

function exchange(
  host: string,
  port: number,
  line: string,
  onSocket: (s: Socket | null) => void,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port, noDelay: true });
    onSocket(socket);
    const chunks: Buffer[] = [];
    let settled = false;
    const done = (err: Error | null, value = "") => {
      if (settled) return;
      settled = true;
      onSocket(null);
      socket.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    socket.setTimeout(10_000, () => done(new Error("ETIMEDOUT")));
    socket.on("connect", () => socket.write(line));
    socket.on("data", (c: Buffer) => {
      chunks.push(c);
      const all = Buffer.concat(chunks);
      const nl = all.indexOf(0x0a);
      if (nl >= 0) done(null, all.toString("utf8", 0, nl).replace(/\r$/, ""));
    });
    socket.on("error", (e) => done(e));
    socket.on("close", () => done(new Error("connection closed before the echo")));
  });
}

export class EchoClient {
  private readonly ac = new AbortController();
  private socket: Socket | null = null;
  private readonly rotation: Rotation;

  constructor(
    private readonly cfg: ClientConfig,
    private readonly log: Logger,
  ) {
    this.rotation = new Rotation(cfg.servers, cfg.id);
  }

  async run(): Promise<void> {
    const { cfg, log } = this;
    for (let n = 1; n <= cfg.loopAmount && !this.ac.signal.aborted; n++) {
      const msg = `[CLIENT ${cfg.id}] Message N°${n}`;
      const started = Date.now();
      const backoff = new Backoff();
      await this.rotation.startRound();
      for (;;) {
        const target = this.rotation.current;
        try {
          if (target.error) throw target.error;
          const echo = await exchange(target.host, target.port, `${msg}\n`, (s) => {
            this.socket = s;
          });
          log.info(Action.RECEIVE_MESSAGE, "success", { client_id: cfg.id, msg: echo });
          break;
        } catch (err) {
          if (this.ac.signal.aborted) return;
          if (Date.now() - started > cfg.retryBudgetMs) {
            throw new QuinielaError(
              FatalCode.SERVER_UNREACHABLE,
              `echo failed: ${(err as Error).message}`,
            );
          }
          log.debug(Action.CONNECT, "in_progress", {
            client_id: cfg.id,
            reason: (err as Error).message,
          });
          // the next address at once; backoff only after every address failed
          if (this.rotation.fail()) {
            await backoff.wait(this.ac.signal);
            await this.rotation.startRound();
          }
        }
      }
      if (n < cfg.loopAmount || cfg.loopPeriodMs > 0) await sleep(cfg.loopPeriodMs, this.ac.signal);
    }
    if (!this.ac.signal.aborted) log.info(Action.LOOP_FINISHED, "success", { client_id: cfg.id });
  }

  abort(): boolean {
    this.ac.abort();
    const had = this.socket !== null;
    this.socket?.destroy();
    return had;
  }
}
