// Whether PostgreSQL is reachable, as seen by this server, and the log lines that say so: one
// `storage | fail` line when it is lost (later failures while it stays lost are DEBUG), one
// `storage | success | state: reconnected` when a query works again.

import { Action } from "../../../shared/src/actions.js";
import { ErrorCode, type Fault, fault } from "../../../shared/src/errors.js";
import type { Logger } from "../../../shared/src/log.js";

export function pgErrorText(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  const msg = typeof e?.message === "string" && e.message !== "" ? e.message : String(err);
  return typeof e?.code === "string" && /^[0-9A-Z]{5}$/.test(e.code) ? `${e.code} ${msg}` : msg;
}

export class PgHealth {
  private down = false;

  constructor(private readonly log: Logger) {}

  get isDown(): boolean {
    return this.down;
  }

  /** Records a failure; returns the STORAGE_FAILURE fault to answer with. */
  failed(during: string, err: unknown): Fault {
    const error = pgErrorText(err);
    if (!this.down) {
      this.down = true;
      this.log.error(Action.STORAGE, "fail", { store: "postgres", during, error });
    } else {
      this.log.debug(Action.STORAGE, "fail", { store: "postgres", during, error });
    }
    return fault(ErrorCode.STORAGE_FAILURE, `database unavailable: ${error}`);
  }

  ok(): void {
    if (!this.down) return;
    this.down = false;
    this.log.info(Action.STORAGE, "success", { store: "postgres", state: "reconnected" });
  }
}
