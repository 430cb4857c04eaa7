// TLS material for both programs: PEM files read and checked at start-up (a key that does not
// match its certificate, or a certificate out of date, is a config error then, not a handshake
// failure the peer reports much later), and the handshake errors a user meets turned into
// sentences (OpenSSL's codes alone do not say which side has to change what).

import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { createSecureContext, type SecureContext, type SecureContextOptions } from "node:tls";
import { FatalCode, QuinielaError } from "./errors.js";

function bad(message: string): never {
  throw new QuinielaError(FatalCode.BAD_CONFIG, message);
}

function readPem(key: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    bad(`${key}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

function parseCert(key: string, path: string, pem: Buffer): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    bad(`${key}: ${path} is not a PEM certificate`);
  }
}

/** A file's certificate must be in date now: an expired one would fail every handshake. */
function checkDates(key: string, path: string, cert: X509Certificate, now: Date): void {
  if (new Date(cert.validTo) < now) bad(`${key}: certificate ${path} expired on ${cert.validTo}`);
  if (new Date(cert.validFrom) > now) {
    bad(`${key}: certificate ${path} is not valid before ${cert.validFrom}`);
  }
}

export interface TlsFiles {
  /** [config key, path] of each file; cert and key go together. */
  cert?: [string, string];
  key?: [string, string];
  ca?: [string, string];
}

export interface TlsMaterial {
  /** The PEM contents (a tls.Server takes these), and the context built from them. */
  options: SecureContextOptions;
  context: SecureContext;
  /** Our own certificate, when there is one. */
  cert: X509Certificate | null;
}

/** Reads and checks the files, and builds the context both sides' sockets use. */
export function loadTls(files: TlsFiles, now = new Date()): TlsMaterial {
  let cert: X509Certificate | null = null;
  const opts: SecureContextOptions = {};
  if (files.cert && files.key) {
    const [certKey, certPath] = files.cert;
    const [keyKey, keyPath] = files.key;
    const certPem = readPem(certKey, certPath);
    const keyPem = readPem(keyKey, keyPath);
    Object.assign(opts, { cert: certPem, key: keyPem });
    cert = parseCert(certKey, certPath, certPem);
    let privateKey: ReturnType<typeof createPrivateKey>;
    try {
      privateKey = createPrivateKey(keyPem);
    } catch {
      bad(`${keyKey}: ${keyPath} is not a PEM private key (or it is encrypted)`);
    }
    if (!cert.checkPrivateKey(privateKey)) {
      bad(`${keyKey}: the key in ${keyPath} does not match the certificate ${certPath}`);
    }
    checkDates(certKey, certPath, cert, now);
  }
  if (files.ca) {
    const [caKey, caPath] = files.ca;
    const caPem = readPem(caKey, caPath);
    opts.ca = caPem;
    checkDates(caKey, caPath, parseCert(caKey, caPath, caPem), now);
  }
  try {
    return { options: opts, context: createSecureContext(opts), cert };
  } catch (err) {
    bad(`TLS files refused: ${(err as Error).message}`);
  }
}

/** The `agency-{id}` of a certificate subject's CN, or 0 when it names no agency. */
export function agencyOfCn(cn: string | undefined): number {
  const m = /^agency-(\d{1,10})$/.exec(cn ?? "");
  const id = m ? Number(m[1]) : 0;
  return id >= 1 && id <= 0xffffffff ? id : 0;
}

/** Verification failures: the peer's certificate is not one we accept. */
const CERT_ERRORS: Record<string, string> = {
  CERT_HAS_EXPIRED: "certificate has expired",
  CERT_NOT_YET_VALID: "certificate is not valid yet",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "certificate is not signed by the trusted CA",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "certificate is not signed by the trusted CA",
  UNABLE_TO_GET_ISSUER_CERT: "certificate is not signed by the trusted CA",
  SELF_SIGNED_CERT_IN_CHAIN: "certificate is not signed by the trusted CA",
  DEPTH_ZERO_SELF_SIGNED_CERT: "certificate is self-signed, not signed by the trusted CA",
  CERT_SIGNATURE_FAILURE: "certificate signature does not verify against the trusted CA",
  CERT_REVOKED: "certificate was revoked",
  INVALID_PURPOSE: "certificate is not meant for this use (wrong key usage)",
};

/** Alerts from the peer: it did not accept us. */
const ALERTS: Record<string, string> = {
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: "the peer does not trust the CA of our certificate",
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: "the peer refused our certificate",
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: "the peer says our certificate has expired",
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: "the peer requires a certificate and we sent none",
  ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR: "the peer could not verify our key (wrong key?)",
  ERR_SSL_WRONG_VERSION_NUMBER: "the peer does not speak TLS (is TLS on at both ends?)",
  ERR_SSL_PACKET_LENGTH_TOO_LONG: "the peer does not speak TLS (is TLS on at both ends?)",
};

/**
 * A sentence for a TLS failure that retrying cannot fix (a certificate problem, either side's),
 * or null for anything else (a dropped connection: the caller retries). `whose` names the peer's
 * certificate ("server", "agency").
 */
export function describeTlsFailure(err: unknown, whose: string): string | null {
  const e = err as NodeJS.ErrnoException & { reason?: string; host?: string; cert?: unknown };
  const code = e?.code ?? "";
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    const names = altNames(e.cert);
    return `${whose} certificate does not carry the name "${e.host ?? "?"}"${names ? ` (it is for ${names})` : ""}; set the name to check with CLI_TLS_SERVERNAME or use one of those`;
  }
  const cert = CERT_ERRORS[code];
  if (cert !== undefined) return `${whose} ${cert} (${code})`;
  const alert = ALERTS[code];
  if (alert !== undefined) return `${alert} (${code})`;
  return null;
}

/** A certificate's subject alternative names without their `DNS:` / `IP Address:` tags. */
function altNames(cert: unknown): string {
  const san = (cert as { subjectaltname?: string } | undefined)?.subjectaltname ?? "";
  return san
    .split(",")
    .map((s) => s.trim().replace(/^[^:]*:/, ""))
    .filter((s) => s !== "")
    .join(", ");
}

/** authorizationError of a server-side socket (OpenSSL's code as a string) as a sentence. */
export function describeAuthorizationError(code: string, whose: string): string {
  return CERT_ERRORS[code] !== undefined ? `${whose} ${CERT_ERRORS[code]} (${code})` : code;
}
