// LISTEN on a dedicated connection (a pooled one would be handed to other queries): how a replica
// learns, without polling, that another replica completed the set of finished agencies or ran the
// draw. The connection is re-established with backoff when lost; every (re)connection reports an
// event too, since notifications sent while it was down are gone: the owner re-reads the state.

import type pg from "pg";
import { pgDriver } from "./pg-driver.js";
import type { PgHealth } from "./pg-health.js";

export class PgListener {
  private client: pg.Client | null = null;
  private closed = false;
  private delay = 200;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly channel: string,
    private readonly health: PgHealth,
    private readonly onEvent: (payload: string | null) => void,
  ) {}

  start(): void {
    void this.connect();
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const c = new (pgDriver().Client)(this.config);
    let lost = false;
    const onLost = (err: unknown) => {
      if (lost) return;
      lost = true;
      if (this.client === c) this.client = null;
      c.end().catch(() => undefined);
      if (this.closed) return;
      this.health.failed("listen", err ?? new Error("connection ended"));
      this.timer = setTimeout(() => void this.connect(), this.delay);
      this.timer.unref();
      this.delay = Math.min(this.delay * 2, 5000);
    };
    c.on("error", onLost);
    c.on("end", () => onLost(null));
    c.on("notification", (m) => this.onEvent(m.payload ?? null));
    try {
      await c.connect();
      await c.query(`LISTEN ${this.channel}`);
    } catch (err) {
      onLost(err);
      return;
    }
    if (this.closed) {
      await c.end().catch(() => undefined);
      return;
    }
    this.client = c;
    this.delay = 200;
    this.health.ok();
    this.onEvent(null);
  }

  async stop(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => undefined);
  }
}
