// The TCP front: accepts connections, tells protocol from text (and, with TLS on, from a TLS
// ClientHello: see tls.ts) by the first byte, enforces the connection cap, and owns the close order on shutdown:
//   1. stop accepting (close the listener);
//   2. every agency connection: answer what is already durable, send ERROR SHUTTING_DOWN, close;
//      echo connections: end;
//   3. flush and close the storage and the state journal (each logged).

import { createServer, type Server, type Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { Action } from "../../shared/src/actions.js";
import type { ServerConfig } from "../../shared/src/config.js";
import { ErrorCode, errorName } from "../../shared/src/errors.js";
import type { Logger } from "../../shared/src/log.js";
import { remoteIp } from "../../shared/src/net.js";
import { MAGIC, MsgType } from "../../shared/src/protocol/frame.js";
import { encodeFaultReply } from "../../shared/src/protocol/messages.js";
import { EchoSession } from "./echo.js";
import type { Lottery } from "./lottery.js";
import { AgencySession } from "./session.js";
import { AgencyTls, TLS_HANDSHAKE } from "./tls.js";

type Session = AgencySession | EchoSession;

export class LotteryServer {
  private readonly server: Server;
  private readonly sockets = new Map<Socket, Session | null>();
  private closing = false;
  private readonly sweep: NodeJS.Timeout;
  /** TLS for agencies (TLS_CERT_FILE and TLS_KEY_FILE set), or null. */
  private readonly tls: AgencyTls | null;

  constructor(
    private readonly config: ServerConfig,
    private readonly lottery: Lottery,
    private readonly log: Logger,
    private readonly onFatal: (err: Error) => void,
  ) {
    this.tls = AgencyTls.fromConfig(config, log);
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
      this.log.warn(Action.ACCEPT_CONNECTIONS, "fail", {
        ip: d?.remoteAddress ?? "unknown",
        code: errorName(ErrorCode.TOO_MANY_CONNECTIONS),
      });
    });
  }

  /** Open connections (the shutdown deadline names them). */
  get connections(): number {
    return this.sockets.size;
  }

  listen(): Promise<{ address: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once("error", onError);
      const { listenFd, listenBacklog: backlog } = this.config;
      this.server.listen(
        listenFd !== null
          ? { fd: listenFd, backlog }
          : { port: this.config.port, host: bindHost(this.config.ip), backlog },
        () => {
          this.server.off("error", onError);
          const a = this.server.address();
          const port = typeof a === "object" && a ? a.port : this.config.port;
          this.log.info(Action.ACCEPT_CONNECTIONS, "in_progress", { port });
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
    this.log.debug(Action.ACCEPT_CONNECTIONS, "success", { ip });
    this.serve(socket, ip, null);
  }

  /**
   * Serves a connection: a plain one, or (`tls` set) the decrypted stream of one that began with
   * a ClientHello. Its first byte tells what it is.
   */
  private serve(socket: Socket, ip: string, tls: TLSSocket | null): void {
    this.sockets.set(socket, null);
    let session: Session | null = null;
    const onData = (chunk: Buffer) => {
      if (!session) {
        if (tls === null && chunk[0] === TLS_HANDSHAKE && this.tls) {
          // The TLS layer takes the socket over (the handshake has its own timeout); until it
          // is secure the plain socket stays listed, so a shutdown can still close it.
          socket.off("data", onData);
          socket.setTimeout(0);
          this.tls.accept(socket, chunk, (secured) => {
            this.sockets.delete(socket);
            if (this.closing) secured.destroy();
            else this.serve(secured, ip, secured);
          });
          return;
        }
        session = this.open(socket, ip, chunk[0]!, tls);
        if (session === null) return;
        this.sockets.set(socket, session);
      }
      session.onData(chunk);
    };
    const onClose = () => {
      if (session instanceof AgencySession) session.onClose();
      this.sockets.delete(socket);
      this.log.debug(Action.CLOSE_CONNECTION, "success", { ip });
    };
    socket.on("data", onData);
    socket.on("end", () => session?.onEnd());
    socket.on("error", (err: NodeJS.ErrnoException) => {
      this.log.debug(Action.CONNECTION, "fail", { ip, error: err.code ?? err.message });
    });
    socket.on("close", onClose);
    // Until the first byte arrives the connection is neither kind: bound its wait too.
    socket.setTimeout(this.config.firstByteTimeoutMs, () => {
      if (session) return;
      this.log.warn(Action.CONNECTION, "fail", {
        ip,
        code: errorName(ErrorCode.IDLE_TIMEOUT),
        reason: "no data in time",
      });
      socket.destroy();
    });
  }

  /** The session for a connection's first byte; null when the connection is refused. */
  private open(socket: Socket, ip: string, first: number, tls: TLSSocket | null): Session | null {
    if (first !== MAGIC) {
      if (first === TLS_HANDSHAKE && !this.tls) {
        this.refuse(socket, ip, "a TLS connection, but TLS is not configured on this server");
        return null;
      }
      return new EchoSession(socket, ip, this.log, this.config.idleTimeoutMs);
    }
    if (this.tls && tls === null) {
      this.refuse(socket, ip, "a plain-text agency connection: this server requires TLS");
      return null;
    }
    return new AgencySession(
      socket,
      ip,
      this.lottery,
      this.log,
      {
        idleTimeoutMs: this.config.idleTimeoutMs,
        helloTimeoutMs: this.config.helloTimeoutMs,
        frameTimeoutMs: this.config.frameTimeoutMs,
        maxInFlight: 64,
      },
      this.onFatal,
      tls ? this.tls?.vouch(tls) : undefined,
    );
  }

  /**
   * One log line, an ERROR frame, and the end. A TLS client reads the frame as "not TLS"
   * (wrong version number) and stops at once instead of retrying.
   */
  private refuse(socket: Socket, ip: string, reason: string): void {
    this.log.warn(Action.CONNECTION, "fail", {
      ip,
      code: errorName(ErrorCode.TLS_REQUIRED),
      reason,
    });
    socket.end(encodeFaultReply(MsgType.ERROR, 0, ErrorCode.TLS_REQUIRED, reason));
    setTimeout(() => socket.destroy(), 1000).unref();
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
    this.log.info(Action.CLOSE_LISTENER, "success", { port: this.config.port });
  }
}

/** SERVER_IP names where agencies find the server; bind it only if it is a local address. */
function bindHost(ip: string): string {
  if (ip === "" || ip === "server" || !/^[\d.:a-fA-F]+$/.test(ip)) return "0.0.0.0";
  return ip;
}
