// The PostgreSQL store in-process, against a real throwaway PostgreSQL 15: schema creation by
// replicas starting at once, the course's bets round-tripping through COPY both ways,
// exactly-once positions when the same batch reaches two replicas while the first one's
// transaction is still in flight, DONE and draw races, and draw failover.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { logRe } from "../../kit/logs.js";
import { LOCK_CLASS, LOCK_DRAW } from "../../server/src/storage/pg-schema.js";
import { PgStore } from "../../server/src/storage/pg-store.js";
import type { AppendResult, Refusal, WireBatch } from "../../server/src/storage/types.js";
import { Action } from "../../shared/src/actions.js";
import { type Bet, todayKey } from "../../shared/src/bet.js";
import { ErrorCode, type Fault, isFault } from "../../shared/src/errors.js";
import { Logger, type Sink } from "../../shared/src/log.js";
import { MsgType } from "../../shared/src/protocol/frame.js";
import { BatchBuilder } from "../../shared/src/protocol/messages.js";
import { awkwardBets } from "../lib/bets.js";
import { pgSkip, startTestPg, type TestPg } from "./lib/pg.js";

class Capture implements Sink {
  text = "";
  write(t: string): void {
    this.text += t;
  }
  flush(): void {}
}

const TRICKY: Bet[] = awkwardBets(() => 1);

/** A BATCH as the wire carries it. */
function batch(
  agency: number,
  first: number,
  bets: readonly Bet[],
  numberText?: string[],
): WireBatch {
  const b = new BatchBuilder();
  bets.forEach((x, i) => {
    assert.ok(
      b.addStrings([
        x.first_name,
        x.last_name,
        x.document,
        x.birthdate,
        numberText?.[i] ?? String(x.number),
      ]),
    );
  });
  const payload = Buffer.from(b.build(MsgType.BATCH, 1, first).subarray(12));
  return { agency, first, count: bets.length, payload };
}

/** Appends with the store's own checks only (no lottery cache in front): resolves how it ended. */
function append(store: PgStore, b: WireBatch): Promise<AppendResult | Refusal> {
  return new Promise((resolve) => {
    const refused = store.append(b, todayKey(), () => null, resolve);
    if (refused) resolve(refused);
  });
}

async function loadAll(store: PgStore): Promise<Bet[]> {
  const out: Bet[] = [];
  await store.load_bets((b) =>
    out.push({
      agency: b.agency,
      first_name: b.first_name,
      last_name: b.last_name,
      document: b.document,
      birthdate: b.birthdate,
      number: b.number,
    }),
  );
  return out;
}

const key = (b: Bet) =>
  JSON.stringify([b.agency, b.first_name, b.last_name, b.document, b.birthdate, b.number]);
const sorted = (bets: Bet[]) => bets.map(key).sort();

describe("PostgreSQL store", { skip: pgSkip }, () => {
  let pgt: TestPg;
  const stores: PgStore[] = [];
  before(async () => {
    pgt = await startTestPg();
  });
  after(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    await pgt?.stop();
  });

  async function open(
    url: string,
    agencies = 5,
    sink = new Capture(),
    ingestInFlight?: number,
  ): Promise<PgStore> {
    const s = await PgStore.open({
      url,
      agencies,
      log: new Logger("DEBUG", sink),
      retryMs: 5000,
      ...(ingestInFlight === undefined ? {} : { ingestInFlight }),
    });
    stores.push(s);
    return s;
  }

  test("three replicas creating the schema at once all start; the schema is as documented", async () => {
    const url = await pgt.fresh();
    const [a, b, c] = await Promise.all([open(url), open(url), open(url)]);
    assert.ok(a && b && c);
    const cols = await pgt.query(
      url,
      "SELECT column_name || ':' || data_type FROM information_schema.columns WHERE table_name = 'bets' ORDER BY ordinal_position",
    );
    assert.deepEqual(cols.trim().split("\n"), [
      "agency:integer",
      "first_name:text",
      "last_name:text",
      "document:text",
      "birthdate:date",
      "number:integer",
    ]);
    assert.equal((await pgt.query(url, "SELECT count(*) FROM agencies")).trim(), "5");
  });

  test("bets round-trip through COPY in and out: quotes, line breaks, \\., leading zeros", async () => {
    const url = await pgt.fresh();
    const s = await open(url);
    const numberText = TRICKY.map((b, i) => (i === 3 ? "0042" : String(b.number)));
    assert.equal(await append(s, batch(1, 0, TRICKY, numberText)), null);
    assert.deepEqual(sorted(await loadAll(s)), sorted(TRICKY));
    const st = await s.status(1);
    assert.deepEqual(st, { committed: TRICKY.length, done: false, drawn: false });
    assert.equal(
      (await pgt.query(url, "SELECT document FROM bets WHERE number = 0")).trim(),
      "00000000",
      "documents keep their leading zeros",
    );
  });

  test("a name with a NUL byte is refused alone, with its index (PostgreSQL text cannot hold it)", async () => {
    const url = await pgt.fresh();
    const s = await open(url);
    const b = batch(2, 0, [TRICKY[0]!, { ...TRICKY[1]!, last_name: "nul\u0000here" }, TRICKY[2]!]);
    const r = (await append(s, b)) as Refusal;
    assert.equal(r?.fault.code, ErrorCode.INVALID_NAME);
    assert.equal(r?.index, 1);
    assert.equal(await append(s, batch(2, 0, TRICKY)), null, "the batch without it is stored");
  });

  test("the same batch through two replicas while the first transaction holds the agency: stored once", async () => {
    const url = await pgt.fresh();
    const [r1, r2] = await Promise.all([open(url), open(url)]);
    const bets = TRICKY.map((b) => ({ ...b, agency: 3 }));
    // Hold agency 3's row: both replicas' transactions queue behind it, as behind an in-flight one.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query("BEGIN; SELECT * FROM agencies WHERE agency = 3 FOR UPDATE");
    const first = append(r1, batch(3, 0, bets));
    const second = append(r2, batch(3, 0, bets));
    // and another agency's batch in r2's group still commits
    const other = append(r2, batch(4, 0, [TRICKY[0]!]));
    await new Promise((r) => setTimeout(r, 300));
    await holder.query("COMMIT");
    await holder.end();
    const results = await Promise.all([first, second]);
    const ok = results.filter((r) => r === null).length;
    const refused = results.filter((r): r is Fault => r !== null);
    assert.equal(ok, 1, JSON.stringify(results));
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!.code, ErrorCode.OUT_OF_SEQUENCE);
    assert.equal(await other, null);
    assert.equal(
      (await pgt.query(url, "SELECT count(*) FROM bets WHERE agency = 3")).trim(),
      String(bets.length),
    );
    // Each replica reads the authoritative position.
    for (const r of [r1, r2]) {
      const st = await r.status(3);
      assert.ok(!isFault(st));
      assert.equal(st.committed, bets.length);
    }
  });

  for (const inFlight of [1, 2]) {
    test(`pipelined batches of one agency commit in order, ${inFlight} transaction(s) in flight`, async () => {
      const url = await pgt.fresh();
      const s = await open(url, 5, new Capture(), inFlight);
      const results: Promise<AppendResult | Refusal>[] = [];
      let pos = 0;
      for (let round = 0; round < 40; round++) {
        for (let k = 0; k < 5; k++) {
          results.push(append(s, batch(1, pos, TRICKY.slice(0, 3))));
          pos += 3;
        }
        if (round % 3 === 0) await new Promise((r) => setImmediate(r));
      }
      assert.deepEqual(
        (await Promise.all(results)).filter((r) => r !== null),
        [],
      );
      assert.equal((await pgt.query(url, "SELECT count(*) FROM bets")).trim(), String(pos));
      assert.ok(s.commits > 1, "several transactions");
    });
  }

  test("a batch behind or ahead of the database's position is refused, nothing stored", async () => {
    const url = await pgt.fresh();
    const s = await open(url);
    assert.equal(await append(s, batch(1, 0, TRICKY.slice(0, 3))), null);
    const behind = await append(s, batch(1, 1, TRICKY.slice(0, 3)));
    const ahead = await append(s, batch(1, 5, TRICKY.slice(0, 3)));
    assert.equal((behind as Fault).code, ErrorCode.OUT_OF_SEQUENCE);
    assert.equal((ahead as Fault).code, ErrorCode.OUT_OF_SEQUENCE);
    assert.equal(await append(s, batch(1, 3, TRICKY.slice(3, 5))), null);
    assert.equal((await pgt.query(url, "SELECT count(*) FROM bets")).trim(), "5");
  });

  test("DONE: checked against the database, idempotent, refused after; batches after DONE refused", async () => {
    const url = await pgt.fresh();
    const s = await open(url, 2);
    assert.equal(await append(s, batch(1, 0, TRICKY.slice(0, 4))), null);
    const wrong = await s.markDone(1, 3);
    assert.equal((wrong as Fault).code, ErrorCode.COUNT_MISMATCH);
    assert.deepEqual(await s.markDone(1, 4), { allDone: false });
    assert.deepEqual(await s.markDone(1, 4), { allDone: false }, "repeated DONE is fine");
    assert.equal(((await s.markDone(1, 5)) as Fault).code, ErrorCode.COUNT_MISMATCH);
    assert.equal(
      ((await append(s, batch(1, 4, TRICKY.slice(0, 1)))) as Fault).code,
      ErrorCode.AGENCY_FINISHED,
    );
    assert.equal(await s.draw(), null, "no draw before every agency finished");
    assert.deepEqual(await s.markDone(2, 0), { allDone: true });
  });

  for (let round = 1; round <= 3; round++) {
    test(`the last two DONEs through two replicas at once: exactly one sees the set complete (round ${round})`, async () => {
      const url = await pgt.fresh();
      const [r1, r2] = await Promise.all([open(url, 3), open(url, 3)]);
      assert.deepEqual(await r1.markDone(3, 0), { allDone: false });
      const [a, b] = await Promise.all([r1.markDone(1, 0), r2.markDone(2, 0)]);
      const complete = [a, b].filter((x) => !isFault(x) && x.allDone).length;
      assert.equal(complete, 1, JSON.stringify([a, b]));
    });
  }

  test("the draw: several replicas try at once, exactly one runs it; every replica reads the winners", async () => {
    const url = await pgt.fresh();
    const sinks = [new Capture(), new Capture(), new Capture()];
    const rs = await Promise.all(sinks.map((k) => open(url, 2, k)));
    const winners1 = TRICKY.filter((b) => b.number === 7574).map((b) => b.document);
    assert.equal(await append(rs[0]!, batch(1, 0, TRICKY)), null);
    assert.equal(await append(rs[1]!, batch(2, 0, [TRICKY[1]!])), null);
    await rs[2]!.markDone(1, TRICKY.length);
    await rs[1]!.markDone(2, 1);
    const outcomes = await Promise.all(rs.map((r) => r.draw()));
    assert.equal(
      outcomes.filter((o) => o && !isFault(o) && o.ran).length,
      1,
      JSON.stringify(outcomes),
    );
    assert.equal(outcomes.filter((o) => o && !isFault(o) && !o.ran).length, 2);
    for (const r of rs) {
      assert.deepEqual([...((await r.winnersOf(1)) as string[])].sort(), [...winners1].sort());
      assert.deepEqual(await r.winnersOf(2), []);
      const st = await r.status(1);
      assert.ok(!isFault(st) && st.drawn && st.done);
    }
    assert.deepEqual(await rs[0]!.draw(), { ran: false }, "never twice");
    assert.equal(
      (await pgt.query(url, "SELECT bets, winners FROM draw")).trim(),
      `${TRICKY.length + 1}|${winners1.length}`,
      "the draw row counts every stored bet and every winner",
    );
  });

  test("a replica that dies mid-draw: its transaction aborts and another replica runs the draw", async () => {
    const url = await pgt.fresh();
    const s = await open(url, 1);
    assert.equal(await append(s, batch(1, 0, TRICKY)), null);
    assert.deepEqual(await s.markDone(1, TRICKY.length), { allDone: true });
    // A "replica" that took the draw lock and dies before committing.
    const dying = new pg.Client({ connectionString: url });
    await dying.connect();
    dying.on("error", () => undefined);
    await dying.query(
      `BEGIN; SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${LOCK_DRAW}); INSERT INTO winners VALUES (1, 'partial')`,
    );
    const pid = (await dying.query("SELECT pg_backend_pid() AS pid")).rows[0].pid as number;
    const drawing = s.draw();
    await new Promise((r) => setTimeout(r, 300));
    await pgt.query(url, `SELECT pg_terminate_backend(${pid})`);
    assert.deepEqual(await drawing, { ran: true });
    const docs = (await s.winnersOf(1)) as string[];
    assert.ok(!docs.includes("partial"), "the dead replica's partial work is gone");
    assert.equal(docs.length, 3);
  });

  test("NOTIFY: another replica learns of the completed set and of the draw without polling", async () => {
    const url = await pgt.fresh();
    const [r1, r2] = await Promise.all([open(url, 1), open(url, 1)]);
    let events = 0;
    const heard = new Promise<void>((resolve) =>
      r2.watch(() => {
        events++;
        if (events >= 2) resolve();
      }),
    );
    await new Promise((r) => setTimeout(r, 200)); // LISTEN established (its own event)
    events = 0;
    assert.deepEqual(await r1.markDone(1, 0), { allDone: true });
    assert.deepEqual(await r1.draw(), { ran: true });
    await heard;
    assert.deepEqual(await r2.draw(), { ran: false });
  });

  test("an unreachable database at start: bounded retries with log lines, then a clear error", async () => {
    const sink = new Capture();
    const started = Date.now();
    await assert.rejects(
      PgStore.open({
        url: "postgres://quiniela:secret@127.0.0.1:1/none",
        agencies: 1,
        log: new Logger("DEBUG", sink),
        retryMs: 1200,
      }),
      (e: Error & { code?: string }) =>
        e.code === "STORAGE_UNREACHABLE" &&
        /PostgreSQL at postgres:\/\/quiniela:\*\*\*@127\.0\.0\.1:1\/none/.test(e.message),
    );
    assert.ok(Date.now() - started < 6000);
    assert.match(
      sink.text,
      new RegExp(
        `WARNING +${logRe(Action.STORAGE, "fail", String.raw` \| store: postgres \| url: postgres:\/\/quiniela:\*\*\*@127\.0\.0\.1:1\/none \| attempt: 1 \|`).source}`,
      ),
    );
    assert.ok(!sink.text.includes("secret"), "the password is never logged");
  });
});
