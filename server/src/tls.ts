// TLS for agency connections. The listener stays plain TCP: the first byte tells a TLS
// ClientHello (0x16) from the binary protocol and from the echo health check, so the echo check
// (netcat, no TLS) keeps working on the same port. A ClientHello's socket is handed to a
// tls.Server that never listens: its connection handler wraps the socket in a server-side
// TLSSocket (isServer) and, unlike a bare TLSSocket, records whether the client certificate
// verified (authorized / authorizationError). The agency session then runs over the TLSSocket.
//
// Client certificates are checked here but refused at HELLO (the session asks `vouch`), so a
// refused agency gets an ERROR frame with a reason and the server logs it once, like a wrong
// secret, instead of a bare TLS alert the agency cannot explain.

import type { Socket } from "node:net";
import { createServer, type Server, type TLSSocket } from "node:tls";
import { Action } from "../../shared/src/actions.js";
import type { ServerConfig } from "../../shared/src/config.js";
import { ErrorCode, type Fault, fault } from "../../shared/src/errors.js";
import type { Logger } from "../../shared/src/log.js";
import {
  agencyOfCn,
  describeAuthorizationError,
  describeTlsFailure,
  loadTls,
  type TlsMaterial,
} from "../../shared/src/tls.js";

/** First byte of a TLS record carrying a handshake message (a ClientHello comes first). */
export const TLS_HANDSHAKE = 0x16;

/** A live connection's remote end: the same on the plain socket and on its TLSSocket. */
function peerKey(s: Socket): string {
  return `${s.remoteAddress}|${s.remotePort}`;
}

/** Whether a connection may identify as `agency`: null if it may, else the refusal. */
export type Vouch = (agency: number) => Fault | null;

export class AgencyTls {
  private readonly server: Server;
  /** Handshakes under way: what to do with each socket once secure, by remote address. */
  private readonly handshakes = new Map<string, (tls: TLSSocket) => void>();

  private constructor(
    material: TlsMaterial,
    /** Agencies must prove who they are with a certificate of this CA. */
    readonly clientCerts: boolean,
    handshakeTimeoutMs: number,
    private readonly log: Logger,
  ) {
    this.server = createServer({
      ...material.options,
      requestCert: clientCerts,
      // checked by vouch() at HELLO, so the refusal has a reason and a log line
      rejectUnauthorized: false,
      handshakeTimeout: Math.max(1, handshakeTimeoutMs),
    });
    this.server.on("secureConnection", (tls: TLSSocket) => {
      const key = peerKey(tls);
      const secured = this.handshakes.get(key);
      this.handshakes.delete(key);
      if (secured) secured(tls);
      else tls.destroy();
    });
    this.server.on("tlsClientError", (err: NodeJS.ErrnoException, tls: TLSSocket) => {
      // One line per failed handshake; a peer that hangs up mid-handshake is not a TLS problem.
      const why = describeTlsFailure(err, "agency");
      this.log.log(why ? "WARNING" : "DEBUG", "tls_handshake", "fail", {
        ip: tls.remoteAddress?.replace(/^::ffff:/, "") ?? "unknown",
        code: err.code ?? "unknown",
        reason: why ?? err.message,
      });
    });
  }

  /** TLS as configured, or null when it is off. Bad files: a BAD_CONFIG error (start-up). */
  static fromConfig(config: ServerConfig, log: Logger): AgencyTls | null {
    if (config.tlsCertFile === "") return null;
    const material = loadTls({
      cert: ["TLS_CERT_FILE", config.tlsCertFile],
      key: ["TLS_KEY_FILE", config.tlsKeyFile],
      ...(config.tlsClientCaFile !== ""
        ? { ca: ["TLS_CLIENT_CA_FILE", config.tlsClientCaFile] }
        : {}),
    });
    const clientCerts = config.tlsClientCaFile !== "";
    log.info(Action.CONFIG_TLS, "success", {
      certificate: material.cert?.subject.replace(/\n/g, " ") ?? "",
      expires: material.cert?.validTo ?? "",
      client_certificates: clientCerts ? "required" : "not asked",
      plain_agencies: "refused",
    });
    return new AgencyTls(material, clientCerts, config.tlsHandshakeTimeoutMs, log);
  }

  /**
   * Starts the handshake on a socket whose first bytes (`first`, already read from it) are a
   * ClientHello; `secured` gets the TLSSocket once the handshake is done. The bytes go back
   * into the socket's buffer: the TLSSocket reads what is buffered there first.
   */
  accept(raw: Socket, first: Buffer, secured: (tls: TLSSocket) => void): void {
    raw.pause();
    raw.unshift(first);
    const key = peerKey(raw);
    this.handshakes.set(key, secured);
    raw.once("close", () => this.handshakes.delete(key)); // a failed handshake's socket may
    this.server.emit("connection", raw); //                   no longer know its peer
  }

  /** What the socket's certificate allows (undefined: client certificates are not asked for). */
  vouch(tls: TLSSocket): Vouch | undefined {
    if (!this.clientCerts) return undefined;
    let refusal: string | null = null;
    let certified = 0;
    const peer = tls.getPeerCertificate();
    if (!peer || Object.keys(peer).length === 0) {
      refusal = "no client certificate (this server requires one: agency-{id}, from its CA)";
    } else if (!tls.authorized) {
      refusal = describeAuthorizationError(String(tls.authorizationError), "client");
    } else {
      certified = agencyOfCn(typeof peer.subject?.CN === "string" ? peer.subject.CN : undefined);
      if (certified === 0) {
        refusal = `client certificate CN "${String(peer.subject?.CN)}" is not agency-{id}`;
      }
    }
    return (agency) => {
      if (refusal !== null) return fault(ErrorCode.AUTH_FAILED, refusal);
      if (agency !== certified) {
        return fault(
          ErrorCode.AUTH_FAILED,
          `the certificate of agency ${certified} cannot say HELLO as agency ${agency}`,
        );
      }
      return null;
    };
  }
}
