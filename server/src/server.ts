// The TCP front: accepts connections, tells protocol from text by the first byte, enforces the
// connection cap, and owns the close order on shutdown:
//   1. stop accepting (close the listener);
//   2. every agency connection: answer what is already durable, send ERROR SHUTTING_DOWN, close;
//      echo connections: end;
//   3. flush and close the storage and the state journal (each logged).

import { createServer, type Server, type Socket } from "node:net";
import type { ServerConfig } from "../../shared/src/config.js";
import type { Logger } from "../../shared/src/log.js";
import { remoteIp } from "../../shared/src/net.js";
import { MAGIC } from "../../shared/src/protocol/frame.js";
import { EchoSession } from "./echo.js";
import type { Lottery } from "./lottery.js";
import { AgencySession } from "./session.js";

type Session = AgencySession | EchoSession;

export class LotteryServer {
  private readonly server: Server;
  private readonly sockets = new Map<Socket, Session | null>();
  private closing = false;
  private readonly sweep: NodeJS.Timeout;

  constructor(
    private readonly config: ServerConfig,
    private readonly lottery: Lottery,
    private readonly log: Logger,
    private readonly onFatal: (err: Error) => void,
  ) {
    this.server = createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 30_000 });
    this.server.maxConnections = config.maxConnections;
    this.sweep = setInterval(() => {
      const now = Date.now();
      for (const session of this.sockets.values()) {
        if (session instanceof AgencySession) session.checkDeadlines(now);
      }
    }, 1000);
    this.sweep.unref();
    this.server.on("connection", (s) => this.onConnection(s));
    this.server.on("drop", (d) => {
      this.log.warn("accept_connections", "fail", {
        ip: d?.remoteAddress ?? "unknown",
        code: "TOO_MANY_CONNECTIONS",
      });
    });
  }

  get connections(): number {
    return this.sockets.size;
  }

  listen(): Promise<{ address: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once("error", onError);
      this.server.listen(
        {
          port: this.config.port,
          host: bindHost(this.config.ip),
          backlog: this.config.listenBacklog,
        },
        () => {
          this.server.off("error", onError);
          const a = this.server.address();
          const port = typeof a === "object" && a ? a.port : this.config.port;
          this.log.info("accept_connections", "in_progress", { port });
          resolve({ address: typeof a === "object" && a ? a.address : String(a), port });
        },
      );
    });
  }

  private onConnection(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const ip = remoteIp(socket);
    this.log.debug("accept_connections", "success", { ip });
    this.sockets.set(socket, null);
    let session: Session | null = null;
    socket.on("data", (chunk: Buffer) => {
      if (!session) {
        session =
          chunk[0] === MAGIC
            ? new AgencySession(
                socket,
                ip,
                this.lottery,
                this.log,
                {
                  idleTimeoutMs: this.config.idleTimeoutMs,
                  helloTimeoutMs: this.config.helloTimeoutMs,
                  maxInFlight: 64,
                },
                this.onFatal,
              )
            : new EchoSession(socket, ip, this.log, this.config.idleTimeoutMs);
        this.sockets.set(socket, session);
      }
      session.onData(chunk);
    });
    socket.on("end", () => session?.onEnd());
    socket.on("error", (err: NodeJS.ErrnoException) => {
      this.log.debug("connection", "fail", { ip, error: err.code ?? err.message });
    });
    socket.on("close", () => {
      if (session instanceof AgencySession) session.onClose();
      this.sockets.delete(socket);
      this.log.debug("close_connection", "success", { ip });
    });
    // Until the first byte arrives the connection is neither kind: bound its wait too.
    socket.setTimeout(this.config.helloTimeoutMs, () => {
      if (session) return;
      this.log.warn("connection", "fail", { ip, code: "IDLE_TIMEOUT", reason: "no data in time" });
      socket.destroy();
    });
  }

  /** Steps 1 and 2 of the close order; resolves when every connection is closed. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.sweep);
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const [socket, session] of this.sockets) {
        if (session) session.shutdown();
        else socket.destroy();
      }
    });
    this.log.info("close_listener", "success", { port: this.config.port });
  }
}

/** SERVER_IP names where agencies find the server; bind it only if it is a local address. */
function bindHost(ip: string): string {
  if (ip === "" || ip === "server" || !/^[\d.:a-fA-F]+$/.test(ip)) return "0.0.0.0";
  return ip;
}
