// Server address lists: parsing, resolution of names to several replicas, rotation order.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type Candidate,
  type Endpoint,
  formatEndpoint,
  type Lookup,
  parseAddressList,
  parseEndpoint,
  Rotation,
  resolveEndpoints,
} from "../../shared/src/address.js";
import { QuinielaError } from "../../shared/src/errors.js";

function badConfig(run: () => unknown, what: string): void {
  assert.throws(
    run,
    (err: unknown) => err instanceof QuinielaError && err.code === "BAD_CONFIG",
    `${what}: expected QuinielaError BAD_CONFIG`,
  );
}

const key = (c: Candidate): string => `${formatEndpoint(c)}${c.error ? "!" : ""}`;

/** A fake DNS: a table that tests can change between rounds; unknown names fail. */
function fakeDns(table: Record<string, string[]>): { lookup: Lookup; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    lookup: async (host) => {
      calls.push(host);
      const a = table[host];
      if (!a)
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
      return a;
    },
  };
}

describe("parseEndpoint / parseAddressList", () => {
  it("host:port, IPv4 and bracketed IPv6", () => {
    assert.deepEqual(parseEndpoint("server:12345"), { host: "server", port: 12345 });
    assert.deepEqual(parseEndpoint("127.0.0.1:1"), { host: "127.0.0.1", port: 1 });
    assert.deepEqual(parseEndpoint("[::1]:12345"), { host: "::1", port: 12345 });
    assert.deepEqual(parseEndpoint("[fe80::1:2]:65535"), { host: "fe80::1:2", port: 65535 });
    assert.deepEqual(parseEndpoint("  server:1  "), { host: "server", port: 1 });
  });

  it("a comma-separated list; spaces around commas ignored; order kept", () => {
    assert.deepEqual(parseAddressList("a:1, b:2 ,[::1]:3,127.0.0.1:4"), [
      { host: "a", port: 1 },
      { host: "b", port: 2 },
      { host: "::1", port: 3 },
      { host: "127.0.0.1", port: 4 },
    ]);
    assert.deepEqual(parseAddressList("server:12345"), [{ host: "server", port: 12345 }]);
  });

  const bad: Array<[string, string]> = [
    ["no port", "server"],
    ["empty host", ":12345"],
    ["port 0", "server:0"],
    ["port too big", "server:70000"],
    ["port not a number", "server:http"],
    ["IPv6 without brackets", "::1:12345"],
    ["unclosed bracket", "[::1:12345"],
    ["name in brackets", "[server]:1"],
    ["space inside the host", "my server:1"],
    ["empty list", ""],
    ["empty entry", "a:1,,b:2"],
    ["trailing comma", "a:1,"],
    ["one bad entry among good ones", "a:1,b,c:3"],
  ];
  for (const [name, text] of bad) {
    it(`refuses ${name} with BAD_CONFIG`, () => badConfig(() => parseAddressList(text), name));
  }

  it("the error names the bad entry and hints at brackets for IPv6", () => {
    assert.throws(() => parseAddressList("a:1, b ,c:3"), /got " b "/);
    assert.throws(() => parseAddressList("::1:12345"), /\[::1\]:12345/);
  });

  it("formatEndpoint brackets IPv6", () => {
    assert.equal(formatEndpoint({ host: "::1", port: 5 }), "[::1]:5");
    assert.equal(formatEndpoint({ host: "server", port: 5 }), "server:5");
  });
});

describe("resolveEndpoints", () => {
  it("IP literals are not looked up; names expand to all their addresses, sorted", async () => {
    const dns = fakeDns({ server: ["172.25.125.12", "172.25.125.3", "172.25.125.7"] });
    const list = await resolveEndpoints(
      parseAddressList("10.0.0.1:1,server:12345,[::1]:2"),
      dns.lookup,
    );
    assert.deepEqual(list.map(key), [
      "10.0.0.1:1",
      "172.25.125.3:12345",
      "172.25.125.7:12345",
      "172.25.125.12:12345",
      "[::1]:2",
    ]);
    assert.deepEqual(dns.calls, ["server"]);
    assert.equal(list[1]!.entry, "server:12345");
  });

  it("IPv4 before IPv6 for a dual-stack name; duplicates dropped", async () => {
    const dns = fakeDns({ h: ["::1", "127.0.0.1", "127.0.0.1"] });
    const list = await resolveEndpoints(parseAddressList("h:1,127.0.0.1:1"), dns.lookup);
    assert.deepEqual(list.map(key), ["127.0.0.1:1", "[::1]:1"]);
  });

  it("a name that does not resolve is one candidate carrying the error", async () => {
    const dns = fakeDns({});
    const list = await resolveEndpoints(parseAddressList("nowhere:1,10.0.0.1:2"), dns.lookup);
    assert.deepEqual(list.map(key), ["nowhere:1!", "10.0.0.1:2"]);
    assert.match(list[0]!.error!.message, /ENOTFOUND nowhere/);
  });
});

describe("Rotation", () => {
  const three: Endpoint[] = parseAddressList("10.0.0.1:1,10.0.0.2:1,10.0.0.3:1");

  it("agency N starts at entry (N-1) mod n", async () => {
    for (let id = 1; id <= 7; id++) {
      const r = new Rotation(three, id);
      await r.startRound();
      assert.equal(r.current.host, `10.0.0.${((id - 1) % 3) + 1}`, `agency ${id}`);
    }
  });

  it("each failure moves to the next entry, wrapping; a round ends after n failures", async () => {
    const r = new Rotation(three, 2);
    await r.startRound();
    const seen: string[] = [r.current.host];
    const ends: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      ends.push(r.fail());
      seen.push(r.current.host);
    }
    assert.deepEqual(seen, ["10.0.0.2", "10.0.0.3", "10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    assert.deepEqual(ends, [false, false, true, true]);
    await r.startRound(); // a new round: n more failures before the next backoff
    assert.equal(r.fail(), false);
  });

  it("one entry: every failure ends a round (backoff as with a single server)", async () => {
    const r = new Rotation(parseAddressList("127.0.0.1:5"), 9);
    await r.startRound();
    assert.equal(r.current.port, 5);
    assert.equal(r.fail(), true);
    assert.equal(r.current.port, 5);
  });

  it("a dropped link (fail, then a new round) goes on with the next entry", async () => {
    const r = new Rotation(three, 1);
    await r.startRound();
    assert.equal(r.current.host, "10.0.0.1");
    r.fail(); // the connection to 10.0.0.1 dropped
    await r.startRound();
    assert.equal(r.current.host, "10.0.0.2");
  });

  it("a name resolving to several replicas is a list; resolved again each round", async () => {
    const table: Record<string, string[]> = { server: ["172.25.125.3", "172.25.125.4"] };
    const dns = fakeDns(table);
    const r = new Rotation(parseAddressList("server:12345"), 4, dns.lookup);
    await r.startRound();
    assert.equal(r.candidates.length, 2);
    assert.equal(r.current.host, "172.25.125.4"); // (4-1) mod 2 = 1
    table.server = ["172.25.125.3", "172.25.125.4", "172.25.125.5"]; // a replica appears
    r.fail();
    await r.startRound();
    assert.equal(r.candidates.length, 3);
    // (4-1+1) mod 3 = 1 is .4 again in the longer list: the replica that just failed is skipped
    assert.equal(r.current.host, "172.25.125.5");
    assert.deepEqual(dns.calls, ["server", "server"]);
  });

  it("a replica that disappears is no longer tried", async () => {
    const table: Record<string, string[]> = { server: ["172.25.125.3", "172.25.125.4"] };
    const dns = fakeDns(table);
    const r = new Rotation(parseAddressList("server:12345"), 2, dns.lookup);
    await r.startRound();
    assert.equal(r.current.host, "172.25.125.4");
    table.server = ["172.25.125.3"]; // .4 died and left the DNS
    r.fail();
    await r.startRound();
    assert.equal(r.current.host, "172.25.125.3");
    assert.equal(r.fail(), true);
  });

  it("agencies spread evenly over the replicas", async () => {
    const perReplica = new Map<string, number>();
    for (let id = 1; id <= 300; id++) {
      const r = new Rotation(three, id);
      await r.startRound();
      perReplica.set(r.current.host, (perReplica.get(r.current.host) ?? 0) + 1);
    }
    assert.deepEqual([...perReplica.values()], [100, 100, 100]);
  });
});
