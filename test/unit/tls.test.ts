// TLS material checks at start-up and the TLS config keys.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { loadClientConfig, loadServerConfig } from "../../shared/src/config.js";
import { agencyOfCn, describeTlsFailure, loadTls } from "../../shared/src/tls.js";
import { makeCerts } from "../../tools/certs.js";

const dir = mkdtempSync(join(tmpdir(), "quiniela-tls-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const certs = makeCerts({ out: dir, agencies: 2, days: 10 });
const cert = (id: number) => certs.agencyCert.replace("{id}", String(id));
const key = (id: number) => certs.agencyKey.replace("{id}", String(id));

describe("TLS files", () => {
  test("a certificate with its key and a CA load", () => {
    const m = loadTls({ cert: ["C", cert(1)], key: ["K", key(1)], ca: ["A", certs.ca] });
    assert.match(m.cert!.subject, /CN=agency-1/);
  });

  test("a key that is not the certificate's is a config error naming both files", () => {
    assert.throws(
      () => loadTls({ cert: ["CLI_TLS_CERT_FILE", cert(1)], key: ["CLI_TLS_KEY_FILE", key(2)] }),
      {
        code: "BAD_CONFIG",
        message:
          /^CLI_TLS_KEY_FILE: the key in .*agency-2\.key does not match the certificate .*agency-1\.crt$/,
      },
    );
  });

  test("an expired certificate (or CA) is a config error with its date", () => {
    const later = new Date(Date.now() + 11 * 86_400_000);
    assert.throws(() => loadTls({ cert: ["C", cert(1)], key: ["K", key(1)] }, later), {
      message: /^C: certificate .*agency-1\.crt expired on /,
    });
    assert.throws(() => loadTls({ ca: ["TLS_CLIENT_CA_FILE", certs.ca] }, later), {
      message: /^TLS_CLIENT_CA_FILE: certificate .*ca\.crt expired on /,
    });
  });

  test("a missing file or one that is not PEM says which key", () => {
    assert.throws(() => loadTls({ ca: ["CLI_TLS_CA_FILE", join(dir, "nope.crt")] }), {
      message: /^CLI_TLS_CA_FILE: cannot read .*nope\.crt: ENOENT$/,
    });
    assert.throws(() => loadTls({ ca: ["CLI_TLS_CA_FILE", key(1)] }), {
      message: /is not a PEM certificate/,
    });
  });

  test("CN agency-N names agency N, anything else none", () => {
    assert.equal(agencyOfCn("agency-7"), 7);
    for (const cn of ["agency-0", "agency-", "server", "agency-1 ", undefined]) {
      assert.equal(agencyOfCn(cn), 0, String(cn));
    }
  });

  test("handshake failures a user meets are sentences; a dropped connection is not one", () => {
    const e = (code: string) => Object.assign(new Error(code), { code });
    assert.match(
      describeTlsFailure(e("CERT_HAS_EXPIRED"), "server")!,
      /^server certificate has expired/,
    );
    assert.match(
      describeTlsFailure(e("UNABLE_TO_VERIFY_LEAF_SIGNATURE"), "server")!,
      /not signed by the trusted CA/,
    );
    assert.equal(describeTlsFailure(e("ECONNRESET"), "server"), null);
  });
});

describe("TLS config keys", () => {
  test("server: cert and key go together, the client CA needs them", () => {
    const c = loadServerConfig("[DEFAULT]\nTLS_CERT_FILE = /c\nTLS_KEY_FILE = /k\n", {
      TLS_CLIENT_CA_FILE: "/ca",
    });
    assert.deepEqual([c.tlsCertFile, c.tlsKeyFile, c.tlsClientCaFile], ["/c", "/k", "/ca"]);
    assert.throws(() => loadServerConfig("", { TLS_CERT_FILE: "/c" }), /go together/);
    assert.throws(() => loadServerConfig("", { TLS_CLIENT_CA_FILE: "/ca" }), /needs TLS_CERT_FILE/);
  });

  test("agency: tls.* in config.yaml, CLI_TLS_* override", () => {
    const yaml = "tls:\n  ca: /ca\n  cert: /a-{id}.crt\n  key: /a-{id}.key\n";
    const c = loadClientConfig(yaml, { CLI_TLS_SERVERNAME: "server" });
    assert.deepEqual(
      [c.tlsCaFile, c.tlsCertFile, c.tlsKeyFile, c.tlsServername],
      ["/ca", "/a-{id}.crt", "/a-{id}.key", "server"],
    );
    assert.equal(loadClientConfig(yaml, { CLI_TLS_CA_FILE: "/other" }).tlsCaFile, "/other");
    assert.throws(() => loadClientConfig("", { CLI_TLS_KEY_FILE: "/k" }), /go together/);
    assert.equal(loadClientConfig("", {}).tlsCaFile, "");
  });
});
