#!/usr/bin/env node
/**
 * certs: throwaway certificates for running the lottery over mutual TLS.
 *
 *   npm run certs -- --agencies 5 --out DIR [--days D]
 *
 * Writes into DIR (with the machine's `openssl`, 3.0 or later):
 *   ca.crt, ca.key                a CA made for this run (keep ca.key to yourself: whoever has it
 *                                 can make certificates for any agency)
 *   server.crt, server.key        the server's certificate, names server, localhost, 127.0.0.1
 *   agency-N.crt, agency-N.key    agency N's certificate, subject CN agency-N (N = 1..agencies)
 *
 * The server then takes TLS_CERT_FILE=server.crt, TLS_KEY_FILE=server.key and
 * TLS_CLIENT_CA_FILE=ca.crt; agency N takes CLI_TLS_CA_FILE=ca.crt,
 * CLI_TLS_CERT_FILE=agency-N.crt and CLI_TLS_KEY_FILE=agency-N.key (or agency-{id}.crt).
 * Keys are written readable by all (0644) so the containers' unprivileged user can read the
 * mounted files: these certificates are for tests and demos, not for production.
 *
 * Exit status: 0 written, 1 openssl failed, 2 usage error.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { isMain } from "./lib/cli.js";

export const USAGE = `Usage: npm run certs -- --agencies N --out DIR [--days D]
Makes a throwaway CA, a server certificate (server, localhost, 127.0.0.1) and one
certificate per agency (CN agency-N) in DIR, with the machine's openssl.
`;

/** Names the server certificate carries: the compose service, and loopback for local runs. */
export const SERVER_NAMES = ["DNS:server", "DNS:localhost", "IP:127.0.0.1"];

export interface CertsOptions {
  out: string;
  agencies: number;
  /** Validity in days (default 30). */
  days?: number;
  /** Subject alternative names of the server certificate (default SERVER_NAMES). */
  serverNames?: readonly string[];
}

export interface CertFiles {
  ca: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  /** agency-{id} paths with `{id}` left in (CLI_TLS_CERT_FILE takes them as they are). */
  agencyCert: string;
  agencyKey: string;
}

/** The environment that runs a server and its agencies over mutual TLS with these files. */
export function mutualTlsEnv(f: CertFiles): {
  serverEnv: Record<string, string>;
  agencyEnv: Record<string, string>;
} {
  return {
    serverEnv: { TLS_CERT_FILE: f.serverCert, TLS_KEY_FILE: f.serverKey, TLS_CLIENT_CA_FILE: f.ca },
    agencyEnv: {
      CLI_TLS_CA_FILE: f.ca,
      CLI_TLS_CERT_FILE: f.agencyCert,
      CLI_TLS_KEY_FILE: f.agencyKey,
    },
  };
}

// A config of our own: the system's openssl.cnf may add extensions of its own (or be missing).
const OPENSSL_CNF = "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n";

function openssl(args: string[]): void {
  const r = spawnSync("openssl", args, { encoding: "utf8" });
  if (r.error) throw new Error(`cannot run openssl: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`openssl ${args[0]} failed: ${r.stderr.trim().split("\n")[0] ?? ""}`);
  }
}

/** Writes the CA, the server's and every agency's certificate and key into `out`. */
export function makeCerts(o: CertsOptions): CertFiles {
  mkdirSync(o.out, { recursive: true });
  const cnf = join(o.out, ".openssl.cnf");
  writeFileSync(cnf, OPENSSL_CNF);
  const days = String(o.days ?? 30);
  const files: CertFiles = {
    ca: join(o.out, "ca.crt"),
    caKey: join(o.out, "ca.key"),
    serverCert: join(o.out, "server.crt"),
    serverKey: join(o.out, "server.key"),
    agencyCert: join(o.out, "agency-{id}.crt"),
    agencyKey: join(o.out, "agency-{id}.key"),
  };
  // P-256 keys: handshakes cost a fraction of RSA-2048's.
  const base = (cn: string, cert: string, key: string) => [
    "req",
    "-x509",
    "-config",
    cnf,
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-noenc",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    days,
    "-subj",
    `/CN=${cn}`,
  ];
  const signed = (cn: string, cert: string, key: string, ext: string[]) => {
    openssl([
      ...base(cn, cert, key),
      "-CA",
      files.ca,
      "-CAkey",
      files.caKey,
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-addext",
      "keyUsage=critical,digitalSignature",
      ...ext.flatMap((e) => ["-addext", e]),
    ]);
    chmodSync(key, 0o644);
  };
  try {
    openssl([
      ...base("Quiniela throwaway CA", files.ca, files.caKey),
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    signed("server", files.serverCert, files.serverKey, [
      `subjectAltName=${(o.serverNames ?? SERVER_NAMES).join(",")}`,
      "extendedKeyUsage=serverAuth",
    ]);
    for (let id = 1; id <= o.agencies; id++) {
      const at = (p: string) => p.replace("{id}", String(id));
      signed(`agency-${id}`, at(files.agencyCert), at(files.agencyKey), [
        "extendedKeyUsage=clientAuth",
      ]);
    }
  } finally {
    rmSync(cnf, { force: true });
  }
  return files;
}

function main(argv: string[]): number {
  let values: { agencies?: string; out?: string; days?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        agencies: { type: "string" },
        out: { type: "string" },
        days: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`certs: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const agencies = Number(values.agencies ?? "5");
  const days = Number(values.days ?? "30");
  if (
    values.out === undefined ||
    !Number.isInteger(agencies) ||
    agencies < 0 ||
    agencies > 10_000
  ) {
    process.stderr.write(`certs: --out DIR is required and --agencies must be 0..10000\n${USAGE}`);
    return 2;
  }
  if (!Number.isInteger(days) || days < 1) {
    process.stderr.write(`certs: --days must be a positive integer\n${USAGE}`);
    return 2;
  }
  try {
    const f = makeCerts({ out: values.out, agencies, days });
    process.stdout.write(
      `wrote ${f.ca}, ${f.serverCert} and agency-1..${agencies} certificates in ${values.out} ` +
        `(valid ${days} days)\n` +
        `server: TLS_CERT_FILE=${f.serverCert} TLS_KEY_FILE=${f.serverKey} TLS_CLIENT_CA_FILE=${f.ca}\n` +
        `agency: CLI_TLS_CA_FILE=${f.ca} CLI_TLS_CERT_FILE=${f.agencyCert} CLI_TLS_KEY_FILE=${f.agencyKey}\n`,
    );
    return 0;
  } catch (e) {
    process.stderr.write(`certs: ${(e as Error).message}\n`);
    return 1;
  }
}

if (isMain(import.meta.url)) process.exitCode = main(process.argv.slice(2));
