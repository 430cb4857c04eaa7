// The agency's TLS: whom it trusts (CLI_TLS_CA_FILE), what it proves (CLI_TLS_CERT_FILE and
// CLI_TLS_KEY_FILE, `{id}` in a path standing for the agency id, so one setting serves every
// agency of a load-generator process) and which name the server's certificate must carry.

import { isIP, type Socket } from "node:net";
import { checkServerIdentity, connect } from "node:tls";
import { parseEndpoint } from "../../shared/src/address.js";
import type { ClientConfig } from "../../shared/src/config.js";
import { loadTls, type TlsMaterial } from "../../shared/src/tls.js";

export class ClientTls {
  private constructor(
    private readonly material: TlsMaterial,
    private readonly servername: string,
  ) {}

  /** TLS as configured for this agency, or null when it is off. Bad files: BAD_CONFIG. */
  static fromConfig(cfg: ClientConfig): ClientTls | null {
    if (cfg.tlsCaFile === "" && cfg.tlsCertFile === "") return null;
    const path = (p: string) => p.replaceAll("{id}", String(cfg.id));
    const material = loadTls({
      ...(cfg.tlsCaFile !== "" ? { ca: ["CLI_TLS_CA_FILE", path(cfg.tlsCaFile)] } : {}),
      ...(cfg.tlsCertFile !== ""
        ? {
            cert: ["CLI_TLS_CERT_FILE", path(cfg.tlsCertFile)],
            key: ["CLI_TLS_KEY_FILE", path(cfg.tlsKeyFile)],
          }
        : {}),
    });
    return new ClientTls(material, cfg.tlsServername);
  }

  /**
   * Opens a TLS connection to `host` (an address resolved from `entry`, one entry of
   * server.address). The server's certificate must carry CLI_TLS_SERVERNAME, else the entry's
   * host as the user wrote it (`server`, not the replica's IP it resolved to).
   */
  connect(host: string, port: number, entry: string): Socket {
    const name = this.servername !== "" ? this.servername : parseEndpoint(entry).host;
    const socket = connect({
      host,
      port,
      secureContext: this.material.context,
      // SNI takes host names only; an IP is still checked against the certificate's IP SANs
      ...(isIP(name) === 0 ? { servername: name } : {}),
      checkServerIdentity: (_host, cert) => checkServerIdentity(name, cert),
    });
    socket.setNoDelay(true);
    socket.setKeepAlive(true);
    return socket;
  }
}
