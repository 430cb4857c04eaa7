// The agency's side of several server replicas, with real processes on loopback: an address
// list, the start entry (id-1) mod n, moving to the next entry when a connection fails (dead
// port, killed or stopped server, STORAGE_FAILURE / SHUTTING_DOWN refusals), and resuming
// exactly-once from the WELCOME's committed position. Replicas that share one store need
// PostgreSQL; here the file store is shared by restarting a server on another listed port over
// the same bets.csv, and in-process fake replicas share one in-memory store.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ACKED, actions, loggedWinnerCount, logRe, waitCount } from "../../kit/logs.js";
import { freePort } from "../../kit/ports.js";
import { killHard, type ManagedProcess, reap, stop } from "../../kit/proc.js";
import {
  AGENCY_JS,
  cleanup,
  run,
  type ServerProc,
  startServer,
  startServerOn,
  tempDir,
} from "../../kit/programs.js";
import { tail } from "../../kit/report.js";
import { compareStored } from "../../kit/stored.js";
import { guard } from "../../kit/wait.js";
import { Action } from "../../shared/src/actions.js";
import { ErrorCode, type ErrorCodeValue, isFault } from "../../shared/src/errors.js";
import { FrameDecoder } from "../../shared/src/protocol/decoder.js";
import { type Frame, MsgType } from "../../shared/src/protocol/frame.js";
import {
  AgencyState,
  decodeBatch,
  decodeHello,
  encodeAck,
  encodeFaultReply,
  encodeWelcome,
  encodeWinners,
} from "../../shared/src/protocol/messages.js";
import { generateDataset } from "../../tools/gen-data.js";

const dirs: string[] = [];
const procs: ManagedProcess[] = [];
after(async () => {
  await reap(procs);
  dirs.forEach(cleanup);
});

function agency(
  id: number,
  address: string,
  env: Record<string, string>,
  cwd: string,
): ManagedProcess {
  const p = run(
    AGENCY_JS,
    { CLI_ID: String(id), CLI_SERVER_ADDRESS: address, CLI_LOG_LEVEL: "DEBUG", ...env },
    cwd,
  );
  procs.push(p);
  return p;
}

/** The port of each successful connection of an agency, in order (DEBUG `connect` lines). */
function connectedPorts(p: ManagedProcess): number[] {
  return actions(p.lines, Action.CONNECT)
    .filter((m) => m.result === "success")
    .map((m) => Number(m.port));
}

/** Rows per agency in a bets file (generated names hold no quotes or line breaks). */
function rowsPerAgency(path: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of readFileSync(path, "utf8").split("\r\n")) {
    if (line === "") continue;
    const a = Number(line.slice(0, line.indexOf(",")));
    out.set(a, (out.get(a) ?? 0) + 1);
  }
  return out;
}

describe("agencies and an address list (real servers)", () => {
  test("a dead first entry: the agency goes on to the next one at once", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const bets = [2000, 1500, 1800];
    const winners = [2, 0, 3];
    await generateDataset({ out: dir, agencies: 3, bets, winners, seed: 11 });
    const files = [1, 2, 3].map((i) => join(dir, `agency-${i}.csv`));
    const server = await startServer({ AGENCIES: "3", LOGGING_LEVEL: "INFO" }, dir);
    procs.push(server);
    const dead = await freePort();
    const address = `127.0.0.1:${dead}, 127.0.0.1:${server.port}`;
    const t0 = Date.now();
    const agencies = files.map((f, i) =>
      agency(i + 1, address, { CLI_DATA_FILE: f, CLI_BATCH_MAXAMOUNT: "50" }, dir),
    );
    const codes = await guard(Promise.all(agencies.map((a) => a.code)), 30_000, () =>
      agencies.map((a) => tail(a)).join("\n--\n"),
    );
    assert.deepEqual(codes, [0, 0, 0], agencies.map((a) => tail(a)).join("\n--\n"));
    assert.ok(Date.now() - t0 < 15_000);
    agencies.forEach((a, i) => {
      assert.equal(loggedWinnerCount(a), winners[i], `agency ${i + 1} winners`);
      // the configured list is logged as written
      assert.match(
        a.lines.find((l) => logRe(Action.CONFIG).test(l))!,
        new RegExp(`server_address: 127\\.0\\.0\\.1:${dead}, 127\\.0\\.0\\.1:${server.port} \\|`),
      );
      const tries = actions(a.lines, Action.CONNECT);
      const id = i + 1;
      if ((id - 1) % 2 === 0) {
        // agencies 1 and 3 start at entry 0 (dead): one refusal, then entry 1 right away
        assert.equal(tries[0]?.result, "in_progress", `agency ${id}`);
        assert.equal(Number(tries[0]?.port), dead);
        assert.equal(tries[1]?.result, "success");
        assert.equal(tries[1]?.attempt, "2");
      } else {
        assert.equal(tries[0]?.result, "success", `agency ${id}`);
        assert.equal(tries[0]?.attempt, "1");
      }
      assert.deepEqual(connectedPorts(a), [server.port]);
    });
    assert.equal(await stop(server), 0);
    const cmp = compareStored(join(dir, "bets.csv"), files);
    assert.ok(cmp.equal, cmp.sample.join("\n"));
  });

  test("three servers on three ports: agency N starts at entry (N-1) mod 3", async () => {
    const root = tempDir();
    dirs.push(root);
    const bets = [300, 400, 500, 600, 700, 800];
    await generateDataset({ out: root, agencies: 6, bets, seed: 12 });
    // three independent servers (each its own bets.csv): each sees the agencies that chose it
    const servers: ServerProc[] = [];
    for (let s = 0; s < 3; s++) {
      const srv = await startServer({ AGENCIES: "6", LOGGING_LEVEL: "INFO" }, tempDir());
      dirs.push(srv.dir);
      procs.push(srv);
      servers.push(srv);
    }
    const address = servers.map((s) => `127.0.0.1:${s.port}`).join(",");
    const agencies = bets.map((_, i) =>
      agency(i + 1, address, { CLI_DATA_FILE: join(root, `agency-${i + 1}.csv`) }, root),
    );
    // each agency sends everything and DONE, then waits for a draw that cannot happen here
    await Promise.all(
      agencies.map((a) => guard(a.waitFor(logRe(Action.NOTIFICAR_FIN)), 20_000, () => tail(a))),
    );
    for (const a of agencies) assert.equal(await stop(a), 0);
    for (const s of servers) assert.equal(await stop(s), 0);
    servers.forEach((s, k) => {
      const got = rowsPerAgency(join(s.dir, "bets.csv"));
      const want = new Map([
        [k + 1, bets[k]!],
        [k + 4, bets[k + 3]!],
      ]);
      assert.deepEqual(got, want, `server ${k} holds agencies ${k + 1} and ${k + 4}`);
    });
    agencies.forEach((a, i) => {
      assert.deepEqual(connectedPorts(a), [servers[i % 3]!.port], `agency ${i + 1}`);
    });
  });

  for (const how of ["SIGKILL", "SIGTERM"] as const) {
    test(`${how} to the server mid-ingest: agencies fail over to the next listed port and resume exactly once`, async () => {
      const dir = tempDir();
      dirs.push(dir);
      const bets = [40_000, 30_000, 35_000, 25_000, 20_000];
      const winners = [2, 3, 3, 2, 0];
      await generateDataset({
        out: dir,
        agencies: 5,
        bets,
        winners,
        seed: how === "SIGKILL" ? 13 : 14,
      });
      const files = [1, 2, 3, 4, 5].map((i) => join(dir, `agency-${i}.csv`));
      const pa = await freePort();
      let pb = await freePort();
      while (pb === pa) pb = await freePort();
      const env = { AGENCIES: "5" };
      const first = await startServerOn(pa, env, dir);
      procs.push(first);
      // agencies 1, 3, 5 start at entry 0 (pa); 2 and 4 at entry 1 (pb, not up yet), so they
      // move to pa at once
      const address = `127.0.0.1:${pa},127.0.0.1:${pb}`;
      const agencies = files.map((f, i) =>
        agency(i + 1, address, { CLI_DATA_FILE: f, CLI_BATCH_MAXAMOUNT: "20" }, dir),
      );
      const batches = bets.reduce((n, b) => n + b, 0) / 20;
      // every agency is in session with the first server before it goes away
      await Promise.all(
        agencies.map((a) =>
          guard(a.waitFor(logRe(Action.CONNECT, "success")), 20_000, () => tail(a)),
        ),
      );
      await waitCount(first, ACKED, batches / 10, 30_000);
      if (how === "SIGKILL") await killHard(first);
      else assert.equal(await stop(first), 0);
      const before = first.lines.filter((l) => l.includes(Action.APUESTA_RECIBIDA)).length;
      assert.ok(before < batches, "the server stopped mid-ingest");
      // the replacement listens on the other listed port, over the same bets.csv
      const second = await startServerOn(pb, env, dir);
      procs.push(second);
      const codes = await guard(
        Promise.all(agencies.map((a) => a.code)),
        60_000,
        () => `${tail(second)}\n${agencies.map((a) => tail(a, 8)).join("\n--\n")}`,
      );
      assert.deepEqual(codes, [0, 0, 0, 0, 0], agencies.map((a) => tail(a, 8)).join("\n--\n"));
      assert.equal(await stop(second), 0);
      assert.equal(actions(second.lines, Action.SORTEO).length, 1);
      assert.ok(actions(second.lines, Action.APUESTA_RECIBIDA).length > 0, "ingest went on there");
      const cmp = compareStored(join(dir, "bets.csv"), files);
      assert.ok(
        cmp.equal,
        `rows ${cmp.rows}/${cmp.expected}, missing ${cmp.missing}, extra ${cmp.extra}\n${cmp.sample.join("\n")}`,
      );
      let resumedMidStream = 0;
      agencies.forEach((a, i) => {
        assert.equal(loggedWinnerCount(a), winners[i], `agency ${i + 1} winners`);
        const ports = connectedPorts(a);
        assert.equal(ports[0], pa, `agency ${i + 1} first connected to the first server`);
        assert.equal(ports.at(-1), pb, `agency ${i + 1} finished on the second server`);
        const onB = actions(a.lines, Action.CONNECT).find(
          (m) => m.result === "success" && Number(m.port) === pb,
        )!;
        if (Number(onB.committed) > 0 && Number(onB.committed) < bets[i]!) resumedMidStream++;
      });
      assert.ok(resumedMidStream > 0, "some agency resumed mid-file on the second server");
    });
  }
});

// ------------------------------------------------------------------ fake replicas, one store

/** What a fake replica does with the n-th request of a kind (1-based, counted across replicas). */
type Plan = Partial<
  Record<
    "batch" | "done" | "winners",
    Map<number, ["REJECT" | "ERROR" | "STORED_THEN_REJECT", ErrorCodeValue]>
  >
>;

/** One agency's state shared by all fake replicas: the "database". */
interface Store {
  committed: number;
  state: number;
  documents: string[];
  /** Which replica took each HELLO. */
  hellos: string[];
  seen: { batch: number; done: number; winners: number };
}

/**
 * A protocol server good enough for one agency: HELLO → WELCOME from the shared store, BATCH at
 * the committed position → ACK (stored), DONE → ACK, WINNERS_REQUEST → WINNERS; the plan turns
 * chosen requests into REJECT or ERROR (then the connection is closed) with a given code.
 */
function fakeReplica(
  name: string,
  store: Store,
  plan: Plan,
): Promise<{ server: Server; port: number }> {
  const server = createServer((sock: Socket) => {
    const dec = new FrameDecoder();
    const refuse = (f: Frame, what: "batch" | "done" | "winners", commit?: () => void): boolean => {
      const n = ++store.seen[what];
      const p = plan[what]?.get(n);
      if (!p) return false;
      const [kind, code] = p;
      if (kind === "STORED_THEN_REJECT") commit?.(); // as if another replica had committed it
      const type = kind === "ERROR" ? MsgType.ERROR : MsgType.REJECT;
      sock.write(encodeFaultReply(type, f.seq, code, `planned ${what} ${n}`));
      if (kind === "ERROR") sock.end();
      return true;
    };
    sock.on("data", (chunk: Buffer) => {
      dec.push(chunk);
      for (let f = dec.next(); f !== null; f = dec.next()) {
        if (isFault(f)) return void sock.destroy();
        const fr = f as Frame;
        switch (fr.type) {
          case MsgType.HELLO: {
            const h = decodeHello(fr.payload);
            assert.ok(!isFault(h) && h.agency === 1);
            store.hellos.push(name);
            sock.write(encodeWelcome(fr.seq, { committed: store.committed, state: store.state }));
            break;
          }
          case MsgType.BATCH: {
            const b = decodeBatch(fr.payload);
            assert.ok(!isFault(b));
            if (b.first !== store.committed) {
              sock.write(
                encodeFaultReply(MsgType.REJECT, fr.seq, ErrorCode.OUT_OF_SEQUENCE, "position"),
              );
              break;
            }
            const commit = (): void => {
              for (let k = 0; k < b.count; k++) {
                const at = k * 5 + 2;
                store.documents.push(b.buf.toString("utf8", b.starts[at]!, b.ends[at]!));
              }
              store.committed += b.count;
            };
            if (refuse(fr, "batch", commit)) break;
            commit();
            sock.write(encodeAck(fr.seq, store.committed));
            break;
          }
          case MsgType.DONE:
            if (refuse(fr, "done")) break;
            store.state = AgencyState.DONE;
            sock.write(encodeAck(fr.seq, store.committed));
            break;
          case MsgType.WINNERS_REQUEST:
            if (refuse(fr, "winners")) break;
            for (const w of encodeWinners(fr.seq, ["00000042"])) sock.write(w);
            break;
          default:
            sock.destroy();
        }
      }
    });
    sock.on("error", () => undefined);
  });
  return new Promise((resolve) => {
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      resolve({ server, port: (server.address() as { port: number }).port });
    });
  });
}

describe("agencies and replicas that refuse (fake replicas sharing one store)", () => {
  test("STORAGE_FAILURE (REJECT or ERROR), SHUTTING_DOWN and OUT_OF_SEQUENCE move the agency to the next replica; every bet stored once", async () => {
    const dir = tempDir();
    dirs.push(dir);
    await generateDataset({ out: dir, agencies: 1, bets: 3000, winners: 1, seed: 21 });
    const file = join(dir, "agency-1.csv");
    const store: Store = {
      committed: 0,
      state: AgencyState.OPEN,
      documents: [],
      hellos: [],
      seen: { batch: 0, done: 0, winners: 0 },
    };
    const plan: Plan = {
      batch: new Map([
        [3, ["REJECT", ErrorCode.STORAGE_FAILURE]],
        [9, ["ERROR", ErrorCode.STORAGE_FAILURE]],
        [15, ["ERROR", ErrorCode.SHUTTING_DOWN]],
        [20, ["REJECT", ErrorCode.SHUTTING_DOWN]],
        // stored, then refused as out of sequence: what an agency sees when a batch whose ACK
        // was lost got committed through another replica while it resent it
        [25, ["STORED_THEN_REJECT", ErrorCode.OUT_OF_SEQUENCE]],
      ]),
      done: new Map([[1, ["REJECT", ErrorCode.STORAGE_FAILURE]]]),
      winners: new Map([[1, ["REJECT", ErrorCode.STORAGE_FAILURE]]]),
    };
    const replicas = await Promise.all(["A", "B", "C"].map((n) => fakeReplica(n, store, plan)));
    try {
      const address = replicas.map((r) => `127.0.0.1:${r.port}`).join(",");
      // window 1: a refusal stops the stream at once, so the plan's counts are exact
      const a = agency(
        1,
        address,
        { CLI_DATA_FILE: file, CLI_BATCH_MAXAMOUNT: "100", CLI_BATCH_WINDOW: "1" },
        dir,
      );
      const code = await guard(a.code, 30_000, () => tail(a, 30));
      assert.equal(code, 0, tail(a, 30));
      assert.equal(loggedWinnerCount(a), 1);
      assert.ok(!a.lines.some((l) => l.includes("result: fail")), "refusals are not failures");
      // exactly once: every document of the file, each stored one time
      const want = readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => l.split(",")[2]!);
      assert.equal(store.committed, 3000);
      assert.deepEqual([...store.documents].sort(), want.sort());
      // seven refusals, seven moves to the next replica
      assert.deepEqual(store.hellos, ["A", "B", "C", "A", "B", "C", "A", "B"]);
    } finally {
      for (const r of replicas) r.server.close();
    }
  });
});
