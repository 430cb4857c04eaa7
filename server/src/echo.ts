// Text connections (the Part 1 echo server, kept as the health check): every line received is
// logged and sent back. Lines are bounded so a peer cannot make the server buffer without end.

import { isUtf8 } from "node:buffer";
import type { Socket } from "node:net";
import { Action } from "../../shared/src/actions.js";
import { ErrorCode, errorName } from "../../shared/src/errors.js";
import type { Logger } from "../../shared/src/log.js";
import { endThenDestroy } from "../../shared/src/net.js";

export const MAX_LINE = 8192;

export class EchoSession {
  private partial: Buffer[] = [];
  private partialLen = 0;

  constructor(
    private readonly socket: Socket,
    private readonly ip: string,
    private readonly log: Logger,
    idleTimeoutMs: number,
  ) {
    socket.setTimeout(idleTimeoutMs);
    socket.on("timeout", () => {
      if (socket.writableNeedDrain) {
        // it does not read what we echo: do not keep its bytes around
        this.log.warn(Action.CONNECTION, "fail", {
          ip: this.ip,
          code: errorName(ErrorCode.SLOW_READER),
        });
        socket.destroy();
        return;
      }
      this.log.debug(Action.CONNECTION, "success", {
        ip: this.ip,
        reason: "idle echo connection closed",
      });
      endThenDestroy(socket);
    });
  }

  onData(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      const line = this.partialLen > 0 ? Buffer.concat([...this.partial, piece]) : piece;
      this.partial = [];
      this.partialLen = 0;
      this.echo(line);
      start = nl + 1;
    }
    if (start < chunk.length) {
      this.partial.push(chunk.subarray(start));
      this.partialLen += chunk.length - start;
      if (this.partialLen > MAX_LINE) {
        this.log.warn(Action.RECEIVE_MESSAGE, "fail", { ip: this.ip, reason: "line too long" });
        this.socket.destroy();
      }
    }
  }

  /** Peer finished sending: a last line without newline is echoed too. */
  onEnd(): void {
    if (this.partialLen > 0) {
      this.echo(Buffer.concat(this.partial));
      this.partial = [];
      this.partialLen = 0;
    }
  }

  private echo(raw: Buffer): void {
    if (this.socket.destroyed) return;
    if (!isUtf8(raw)) {
      // Neither our protocol (first byte) nor text: say so once and hang up.
      this.log.warn(Action.RECEIVE_MESSAGE, "fail", {
        ip: this.ip,
        reason: "not a text line (invalid UTF-8)",
      });
      this.socket.destroy();
      return;
    }
    let end = raw.length;
    if (end > 0 && raw[end - 1] === 0x0d) end--;
    const msg = raw.toString("utf8", 0, end);
    this.log.info(Action.RECEIVE_MESSAGE, "success", { ip: this.ip, msg });
    if (!this.socket.destroyed && this.socket.writable) {
      const ok = this.socket.write(`${msg}\n`);
      if (!ok) {
        this.socket.pause();
        this.socket.once("drain", () => this.socket.resume());
      }
    }
  }

  /** Server shutdown: like an agency connection, a peer that does not close is destroyed. */
  shutdown(): void {
    endThenDestroy(this.socket);
  }
}
