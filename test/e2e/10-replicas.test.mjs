// Case 10 — scale-out: 3 server replicas sharing a postgres:15 service
// (`SERVER_REPLICAS=3 ./generar-compose.sh docker-compose-dev.yaml 5`) with the course's 5
// files (78,697 bets, copied from ../shared/data as case 8 does; skipped when absent).
//
// 1. A whole run: winners 2, 3, 3, 2, 0; the replicas' apuesta_recibida lines add up to
//    78,697; one sorteo across the three; the `bets` table holds exactly the input rows (as
//    a multiset); each agency's first connection went to replica (id-1) mod 3 of the name
//    `server` (Docker DNS: the alias resolves to every replica), so the agencies spread.
// 2. `docker kill` (SIGKILL) of the replica serving agency 1, mid-ingest: its agencies
//    reconnect through the others and resume; the same invariants hold (no bet lost or
//    stored twice), exactly one sorteo.
//
// The server logs come from `docker logs <replica>` once the agencies are done (complete,
// in each replica's own order); the agencies' lines from the followed compose stream.

import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  allExited,
  betsReceived,
  clientNames,
  containerIp,
  containerMessages,
  csvRecords,
  dockerSuite,
  followLogs,
  psql,
  ROOT,
  run,
  serverNames,
  setUpProject,
  show,
  skipUnlessDocker,
  whileUp,
} from "./lib/harness.mjs";
import { checkLottery, lotteryDone } from "./lib/lottery.mjs";

const DATA = join(process.env.SHARED_DIR ?? join(ROOT, "../shared"), "data");
const AGENCIES = 5;
const REPLICAS = 3;
const ROWS = [26936, 25518, 16014, 9238, 991];
const WINNERS = [2, 3, 3, 2, 0];
const TOTAL = 78697;
const SERVERS = serverNames(REPLICAS);
const CLIENTS = clientNames(AGENCIES);

const dataMissing = [1, 2, 3, 4, 5].some((i) => !existsSync(join(DATA, `agency-${i}.csv`)));
const skip =
  skipUnlessDocker() ||
  (dataMissing && `the course files are not in ${DATA} (they may not be committed; skipped)`);

/** The input as `agency,first,last,document,birthdate,number` keys with their counts. */
let inputRows;
function countRows(records) {
  const m = new Map();
  for (const r of records) {
    const [agency, first, last, document, birthdate, number] = r;
    const key = JSON.stringify([Number(agency), first, last, document, birthdate, Number(number)]);
    m.set(key, (m.get(key) ?? 0) + 1);
  }
  return m;
}

/** Differences between two multisets, for an assertion message (at most `limit`). */
function multisetDiff(expected, actual, limit = 10) {
  const out = [];
  for (const [k, n] of expected) {
    const a = actual.get(k) ?? 0;
    if (a !== n && out.length < limit) out.push(`${k}: expected ${n}, stored ${a}`);
  }
  for (const [k, a] of actual) {
    if (!expected.has(k) && out.length < limit) out.push(`${k}: not in the input, stored ${a}`);
  }
  return out;
}

function prepare() {
  mkdirSync(join(ROOT, ".data"), { recursive: true });
  const records = [];
  for (let i = 1; i <= AGENCIES; i++) {
    const source = join(DATA, `agency-${i}.csv`);
    const rows = csvRecords(readFileSync(source, "utf8"));
    assert.equal(rows.length, ROWS[i - 1], `input ${source} has ${ROWS[i - 1]} rows`);
    for (const r of rows) records.push([String(i), ...r]);
    copyFileSync(source, join(ROOT, `.data/agency-${i}.csv`));
  }
  inputRows = countRows(records);
  // The course's test_ej8 conditions (maxAmount 10: 7,870 batches, so a kill lands
  // mid-ingest), with DEBUG logs on both sides: the replicas' agency_connected lines and the
  // agencies' connect lines (which replica each attempt went to).
  setUpProject({
    clients: AGENCIES,
    replicas: REPLICAS,
    server: { loggingLevel: "DEBUG" },
    client: { loopAmount: 500, loopPeriod: "150ms", maxAmount: 10, logLevel: "DEBUG" },
  });
}

/** The stored bets: count, rows per agency, winners per agency, and the rows themselves. */
function checkDatabase() {
  assert.equal(Number(psql("select count(*) from bets").trim()), TOTAL, "rows in bets");
  const perAgency = psql(
    "select agency, count(*), count(*) filter (where number = 7574) from bets group by agency order by agency",
  )
    .trim()
    .split("\n")
    .map((l) => l.split("|").map(Number));
  assert.deepEqual(
    perAgency.map(([a]) => a),
    [1, 2, 3, 4, 5],
    "every agency has rows",
  );
  assert.deepEqual(
    perAgency.map(([, n]) => n),
    ROWS,
    "rows per agency = the input files",
  );
  assert.deepEqual(
    perAgency.map(([, , w]) => w),
    WINNERS,
    "winning rows per agency",
  );
  // Row by row, as a multiset: nothing lost, nothing doubled, nothing altered.
  const csv = psql(
    "copy (select agency, first_name, last_name, document, to_char(birthdate, 'YYYY-MM-DD'), number from bets) to stdout with (format csv)",
    { csv: true },
  );
  const stored = countRows(csvRecords(csv));
  const diff = multisetDiff(inputRows, stored);
  assert.deepEqual(diff, [], `the stored rows differ from the input:\n${diff.join("\n")}`);
}

/** Replica names by their address on tp0_testing_net, in the agencies' order (numeric). */
function replicasByAddress() {
  const v4 = (ip) => ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
  const list = SERVERS.map((name) => ({ name, ip: containerIp(name) }));
  for (const r of list) assert.ok(r.ip, `${r.name} has an address on tp0_testing_net`);
  return list.sort((a, b) => v4(a.ip) - v4(b.ip));
}

/** Every server line (complete, from `docker logs`) plus the agencies' lines of the stream. */
function allMessages(streamed) {
  return [
    ...streamed.filter((m) => !SERVERS.includes(m.source)),
    ...SERVERS.flatMap((s) => containerMessages(s)),
  ];
}

/** The agencies' connection attempts (DEBUG `connect` lines), in order. */
function connectAttempts(messages, agency) {
  return messages.filter((m) => m.source === `client${agency}` && m.action === "connect");
}

dockerSuite(
  "case 10: 3 server replicas on PostgreSQL with the course's data",
  () => {
    test("78,697 bets through 3 replicas: one draw, winners 2, 3, 3, 2, 0, rows = input", async (t) => {
      prepare();
      const started = Date.now();
      await whileUp(async () => {
        const { messages: streamed } = await followLogs(
          "case10-replicas",
          (m) => lotteryDone(m, CLIENTS, TOTAL, SERVERS),
          { timeout: 600_000, settled: (m) => allExited(m, CLIENTS) },
        );
        const seconds = (Date.now() - started) / 1000;
        const messages = allMessages(streamed);
        checkLottery(messages, WINNERS, TOTAL, { servers: SERVERS });
        checkDatabase();

        // Spread: `server` resolved to the 3 replicas and agency N started at entry (N-1) mod 3.
        const order = replicasByAddress();
        for (let id = 1; id <= AGENCIES; id++) {
          const first = connectAttempts(messages, id)[0];
          assert.ok(first, `client${id} logs its connection attempts`);
          const expected = order[(id - 1) % REPLICAS];
          assert.equal(
            first.fields.host,
            expected.ip,
            `client${id} first tries ${expected.name} (${expected.ip}), entry ${(id - 1) % REPLICAS} of ${order.map((r) => `${r.name}=${r.ip}`).join(", ")}`,
          );
        }
        const working = SERVERS.filter((s) => betsReceived(messages, [s]) > 0);
        assert.ok(working.length > 1, `the batches went to more than one replica: ${working}`);
        const perReplica = SERVERS.map((s) => `${s} ${betsReceived(messages, [s])}`).join(", ");
        const connected = messages
          .filter((m) => m.action === "agency_connected")
          .map((m) => `${m.fields.agency}→${m.source}`)
          .join(" ");
        t.diagnostic(`done in ${seconds.toFixed(1)} s (compose up included)`);
        t.diagnostic(`bets per replica: ${perReplica}; agencies: ${connected}`);
      });
    });

    test("SIGKILL of a replica mid-ingest: agencies finish through the others, nothing lost or doubled", async (t) => {
      prepare();
      const started = Date.now();
      let victim = null;
      let killedAt = null;
      await whileUp(async () => {
        const { messages: streamed } = await followLogs(
          "case10-replicas-kill",
          (m) =>
            allExited(m, CLIENTS) &&
            m.some((x) => SERVERS.includes(x.source) && x.action === "sorteo"),
          {
            timeout: 600_000,
            settled: (m) => allExited(m, CLIENTS),
            onMessage: (msg, m) => {
              if (killedAt !== null) return;
              // The replica agency 1 (the largest file) connected to, once the agency has sent
              // 2,000 of its 26,936 bets there: killed while the agencies are still sending.
              if (!victim && msg.action === "agency_connected" && msg.fields.agency === "1") {
                victim = msg.source;
              }
              if (
                victim &&
                msg.source === "client1" &&
                msg.action === "apuesta_enviada" &&
                Number(msg.fields.first) >= 2000
              ) {
                killedAt = betsReceived(m, SERVERS);
                const r = run("docker", ["kill", victim]);
                assert.equal(r.status, 0, `docker kill ${victim}: ${r.stderr}`);
              }
            },
          },
        );
        const seconds = (Date.now() - started) / 1000;
        assert.ok(victim, "agency 1 connected to a replica");
        assert.notEqual(killedAt, null, `${victim} was killed`);
        const messages = allMessages(streamed);
        checkLottery(messages, WINNERS, TOTAL, { servers: SERVERS, killed: [victim] });
        checkDatabase();

        // Agency 1 lost its replica mid-stream and resumed on another one from where it was.
        const resumed = messages.filter(
          (m) =>
            m.action === "agency_connected" &&
            m.fields.agency === "1" &&
            m.source !== victim &&
            Number(m.fields.committed) > 0,
        );
        assert.ok(
          resumed.length > 0 && Number(resumed[0].fields.committed) < ROWS[0],
          `agency 1 resumed mid-file on another replica:\n${show(messages.filter((m) => m.action === "agency_connected"))}`,
        );
        const received = betsReceived(messages, SERVERS);
        const perReplica = SERVERS.map((s) => `${s} ${betsReceived(messages, [s])}`).join(", ");
        t.diagnostic(
          `killed ${victim} when the replicas had logged ${killedAt} bets; agency 1 resumed on ${resumed[0].source} from bet ${resumed[0].fields.committed}`,
        );
        t.diagnostic(
          `done in ${seconds.toFixed(1)} s; bets per replica: ${perReplica} (logged ${received}, stored ${TOTAL})`,
        );
      });
    });
  },
  { skip },
);
