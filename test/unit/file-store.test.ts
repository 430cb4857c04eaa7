// The file store through the BetStore interface, and the lottery over it: the ingest path
// (position checked by the lottery, rows encoded by the store), DONE and the journal, the draw,
// recovery of positions and finished agencies after a restart.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Lottery } from "../../server/src/lottery.js";
import { FileStore } from "../../server/src/storage/file-store.js";
import type { AppendResult, Refusal, WireBatch } from "../../server/src/storage/types.js";
import { type Bet, todayKey } from "../../shared/src/bet.js";
import { encodeCsvRow } from "../../shared/src/csv.js";
import { ErrorCode, type Fault, isFault } from "../../shared/src/errors.js";
import { Logger, type Sink } from "../../shared/src/log.js";
import { MsgType } from "../../shared/src/protocol/frame.js";
import { AgencyState, BatchBuilder } from "../../shared/src/protocol/messages.js";

const dir = mkdtempSync(join(tmpdir(), "quiniela-file-store-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tmpFile = () => join(dir, `${n++}-bets.csv`);

class Capture implements Sink {
  text = "";
  write(t: string): void {
    this.text += t;
  }
  flush(): void {}
}

const B = (
  first_name: string,
  last_name: string,
  document: string,
  birthdate: string,
  number: number,
) => ({ first_name, last_name, document, birthdate, number });

const BETS = [
  B("Santiago Lionel", "Lorca", "30904465", "1999-03-17", 7574),
  B('Ana "la jefa"', "Pérez, hija", "00012345", "1980-06-15", 42),
  B("Line\nBreak", "x;y|z:w", "22", "1970-01-01", 7574),
  B("Fornerón", "Álvarez", "1", "1950-12-31", 5),
];

function batch(agency: number, first: number, bets: typeof BETS): WireBatch {
  const b = new BatchBuilder();
  for (const x of bets)
    b.addStrings([x.first_name, x.last_name, x.document, x.birthdate, String(x.number)]);
  const payload = Buffer.from(b.build(MsgType.BATCH, 1, first).subarray(12));
  return { agency, first, count: bets.length, payload };
}

const rowsOf = (agency: number, bets: typeof BETS) =>
  Buffer.concat(
    bets.map((x) =>
      encodeCsvRow([
        String(agency),
        x.first_name,
        x.last_name,
        x.document,
        x.birthdate,
        String(x.number),
      ]),
    ),
  );

function append(store: FileStore, b: WireBatch): Promise<AppendResult | Refusal> {
  return new Promise((resolve) => {
    const refused = store.append(b, todayKey(), () => null, resolve);
    if (refused) resolve(refused);
  });
}

const open = (path: string, agencies = 2, sink = new Capture()) =>
  FileStore.open({ path, sync: "fdatasync", agencies, log: new Logger("DEBUG", sink) });

describe("FileStore (BetStore)", () => {
  it("append encodes the batch as the course's CSV rows, and counts the agency's position", async () => {
    const path = tmpFile();
    const s = await open(path);
    assert.equal(s.kind, "file");
    assert.equal(s.exclusive, true);
    assert.equal(await append(s, batch(1, 0, BETS.slice(0, 2))), null);
    assert.equal(await append(s, batch(2, 0, BETS.slice(2))), null);
    assert.deepEqual(
      readFileSync(path),
      Buffer.concat([rowsOf(1, BETS.slice(0, 2)), rowsOf(2, BETS.slice(2))]),
    );
    assert.deepEqual(await s.status(1), { committed: 2, done: false, drawn: false });
    assert.deepEqual(await s.status(2), { committed: 2, done: false, drawn: false });
    const seen: Bet[] = [];
    // the bet is a view valid during the call: copy its fields
    assert.equal(await s.load_bets((b) => seen.push({ ...b, document: b.document })), 4);
    assert.equal(seen[1]!.document, "00012345");
    await s.close();
  });

  it("DONE: checked against the durable count, journaled once, idempotent; the draw runs once", async () => {
    const path = tmpFile();
    const sink = new Capture();
    const s = await open(path, 2, sink);
    assert.equal(await append(s, batch(1, 0, BETS)), null);
    assert.equal(((await s.markDone(1, 3)) as Fault).code, ErrorCode.COUNT_MISMATCH);
    assert.equal(await s.draw(), null);
    const [a, b] = await Promise.all([s.markDone(1, 4), s.markDone(1, 4)]);
    assert.deepEqual([a, b], [{ allDone: false }, { allDone: false }]);
    assert.equal(readFileSync(`${path}.state`, "latin1"), "done,1,4\r\n", "one journal line");
    assert.equal(((await s.markDone(1, 5)) as Fault).code, ErrorCode.COUNT_MISMATCH);
    assert.deepEqual(await s.markDone(2, 0), { allDone: true });
    assert.equal(isFault(await s.winnersOf(1)), true, "no winners before the draw");
    assert.deepEqual(await s.draw(), { ran: true });
    assert.deepEqual(await s.draw(), { ran: false });
    assert.deepEqual(await s.winnersOf(1), ["30904465", "22"]);
    assert.deepEqual(await s.winnersOf(2), []);
    await s.close();
    assert.match(
      sink.text,
      /action: close_file \| result: success \| path: .*bets\.csv\n.*action: close_file \| result: success \| path: .*bets\.csv\.state\n/,
    );
  });

  it("reopened: positions from the file, finished agencies from the journal (torn line cut)", async () => {
    const path = tmpFile();
    const s = await open(path);
    assert.equal(await append(s, batch(1, 0, BETS)), null);
    assert.equal(await append(s, batch(2, 0, BETS.slice(0, 1))), null);
    assert.deepEqual(await s.markDone(1, 4), { allDone: false });
    await s.close();
    writeFileSync(`${path}.state`, "done,2,1", { flag: "a" }); // torn: no CRLF
    const r = await open(path);
    assert.deepEqual([...r.initial.positions].sort(), [
      [1, 4],
      [2, 1],
    ]);
    assert.deepEqual([...r.initial.done], [[1, 4]]);
    assert.equal(r.initial.bets, 5);
    assert.equal(readFileSync(`${path}.state`, "latin1"), "done,1,4\r\n");
    await r.close();
  });
});

describe("Lottery over the file store", () => {
  async function lottery(path: string, agencies = 2) {
    const sink = new Capture();
    const log = new Logger("DEBUG", sink);
    const store = await FileStore.open({ path, sync: "none", agencies, log });
    const l = await Lottery.open({ agencies, secrets: new Map(), store, log });
    return { l, store, sink };
  }
  const binding = () => ({ replaced: () => undefined });
  const ingest = (l: Lottery, b: WireBatch) =>
    new Promise<AppendResult | Refusal>((resolve) => {
      const refused = l.ingest(b, todayKey(), resolve);
      if (refused) resolve(refused);
    });

  it("the position is checked before anything is encoded: out of order refused, nothing written", async () => {
    const path = tmpFile();
    const { l, store } = await lottery(path);
    assert.equal(await ingest(l, batch(1, 0, BETS.slice(0, 2))), null);
    const ahead = await ingest(l, batch(1, 5, BETS.slice(0, 1)));
    assert.equal((ahead as { fault: Fault }).fault.code, ErrorCode.OUT_OF_SEQUENCE);
    assert.equal((ahead as { index: number }).index, -1);
    assert.equal(
      readFileSync(path).length,
      rowsOf(1, BETS.slice(0, 2)).length,
      "nothing of it stored",
    );
    assert.deepEqual(await l.bind(1, binding()), { committed: 2, state: AgencyState.OPEN });
    l.close();
    await store.close();
  });

  it("DONE completes the set, the draw runs once and logs sorteo once; winners per agency", async () => {
    const path = tmpFile();
    const { l, store, sink } = await lottery(path);
    assert.equal(await ingest(l, batch(1, 0, BETS)), null);
    assert.equal(await l.finish(1, 4), null);
    const drawn = new Promise<void>((resolve) => l.onDraw(resolve));
    assert.equal(l.drawn, false);
    assert.equal(await l.finish(2, 0), null);
    await drawn;
    assert.equal(l.drawn, true);
    assert.equal((await ingest(l, batch(1, 4, BETS))) && true, true, "refused after DONE");
    assert.deepEqual(await l.winnersOf(1), ["30904465", "22"]);
    assert.deepEqual(await l.bind(2, binding()), { committed: 0, state: AgencyState.DRAWN });
    assert.equal(sink.text.match(/action: sorteo \| result: success/g)?.length, 1);
    l.close();
    await store.close();
    // A restart decides the draw again from the same file, with the same winners.
    const again = await lottery(path);
    await new Promise<void>((resolve) => again.l.onDraw(resolve));
    assert.deepEqual(await again.l.winnersOf(1), ["30904465", "22"]);
    assert.match(
      again.sink.text,
      /action: recovery \| result: success \| bets: 4 \| agencies_done: 2/,
    );
    again.l.close();
    await again.store.close();
  });
});
