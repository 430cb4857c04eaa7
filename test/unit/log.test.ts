// The course's log line format and its parser's rules.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import {
  BufferedSink,
  type Fields,
  formatLine,
  formatMessage,
  type Level,
  Logger,
  parseLevel,
  type Result,
  type Sink,
  sanitize,
  timestamp,
} from "../../shared/src/log.js";

class Capture implements Sink {
  text = "";
  flushes = 0;
  write(text: string): void {
    this.text += text;
  }
  flush(): void {
    this.flushes++;
  }
  get lines(): string[] {
    return this.text.split("\n").filter((l) => l !== "");
  }
}

const LINE = /^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (DEBUG|INFO|WARNING|ERROR|CRITICAL) +(.*)$/;

interface Parsed {
  level: string;
  action: string;
  result: string;
  fields: Array<[string, string]>;
}

/**
 * The course's parser rules: in a line holding `action:`, split the message on `|`; the first
 * part is `action: x`, the second `result: y` with y in success/fail/in_progress, every further
 * part is `key: value`.
 */
function courseParse(line: string): Parsed {
  const m = LINE.exec(line);
  assert.ok(m, `line shape: ${JSON.stringify(line)}`);
  const level = m[2]!;
  // the level is padded to 8 characters, then one space
  assert.equal(line.slice(20, 29), `${level.padEnd(8)} `, `padding in ${JSON.stringify(line)}`);
  const parts = m[3]!.split("|").map((p) => p.trim());
  assert.ok(parts.length >= 2, "action and result");
  assert.match(parts[0]!, /^action: \S/);
  const rm = /^result: (.*)$/.exec(parts[1]!);
  assert.ok(rm, `result part: ${parts[1]}`);
  assert.ok(["success", "fail", "in_progress"].includes(rm[1]!), `result ${rm[1]}`);
  const fields: Array<[string, string]> = parts.slice(2).map((p) => {
    const i = p.indexOf(":");
    assert.ok(i > 0, `detail without ':' in ${JSON.stringify(line)}: ${JSON.stringify(p)}`);
    return [p.slice(0, i), p.slice(i + 1).trim()];
  });
  return { level, action: parts[0]!.slice("action: ".length), result: rm[1]!, fields };
}

describe("line shape", () => {
  it("YYYY-MM-DD HH:MM:SS LEVEL(padded to 8) message", () => {
    const d = new Date(2024, 7, 21, 22, 11, 15);
    assert.equal(
      formatLine("INFO", formatMessage("x", "success", { k: "v" }), d),
      "2024-08-21 22:11:15 INFO     action: x | result: success | k: v\n",
    );
    assert.equal(
      formatLine("DEBUG", formatMessage("config", "success", { port: 12345 }), d),
      "2024-08-21 22:11:15 DEBUG    action: config | result: success | port: 12345\n",
    );
    assert.equal(formatLine("WARNING", "m", d), "2024-08-21 22:11:15 WARNING  m\n");
    assert.equal(formatLine("ERROR", "m", d), "2024-08-21 22:11:15 ERROR    m\n");
    assert.equal(formatLine("CRITICAL", "m", d), "2024-08-21 22:11:15 CRITICAL m\n");
  });

  it("timestamps are zero padded local time", () => {
    assert.equal(timestamp(new Date(2001, 0, 2, 3, 4, 5)), "2001-01-02 03:04:05");
    assert.equal(timestamp(new Date(1999, 11, 31, 23, 59, 59)), "1999-12-31 23:59:59");
  });

  it("the course's lines, field by field", () => {
    assert.equal(
      formatMessage("config", "success", {
        client_id: 1,
        server_address: "server:12345",
        loop_amount: 5,
        loop_period: "5s",
        log_level: "DEBUG",
      }),
      "action: config | result: success | client_id: 1 | server_address: server:12345 | loop_amount: 5 | loop_period: 5s | log_level: DEBUG",
    );
    assert.equal(
      formatMessage("receive_message", "success", { client_id: 1, msg: "[CLIENT 1] Message N°1" }),
      "action: receive_message | result: success | client_id: 1 | msg: [CLIENT 1] Message N°1",
    );
    assert.equal(
      formatMessage("accept_connections", "in_progress"),
      "action: accept_connections | result: in_progress",
    );
    assert.equal(
      formatMessage("apuesta_enviada", "success", { dni: "30904465", numero: 7574 }),
      "action: apuesta_enviada | result: success | dni: 30904465 | numero: 7574",
    );
    assert.equal(
      formatMessage("x", "fail", { big: 12n, flag: true }),
      "action: x | result: fail | big: 12 | flag: true",
    );
  });
});

describe("sanitising", () => {
  it("values with | or line breaks cannot break the line or the fields", () => {
    assert.equal(sanitize("a|b"), "a/b");
    assert.equal(sanitize("a\nb\r\nc\rd"), "a b  c d");
    // every other line break of Python's splitlines() (and U+2028/9 for JavaScript's `.`)
    assert.equal(sanitize("a\vb\fc\x1cd\x1de\x1ef\x85g\u2028h\u2029i"), "a b c d e f g h i");
    const msg = formatMessage("receive_message", "success", { msg: "x | result: fail\nINJECTED" });
    assert.equal(msg, "action: receive_message | result: success | msg: x / result: fail INJECTED");
    const line = formatLine("INFO", msg);
    assert.equal(line.indexOf("\n"), line.length - 1);
    assert.deepEqual(courseParse(line.slice(0, -1)).fields, [["msg", "x / result: fail INJECTED"]]);
  });

  it("every line parses with the course's rules, whatever the values (fast-check)", () => {
    const key = fc.stringMatching(/^[a-z][a-z_]{0,11}$/);
    const value = fc.oneof(
      fc.string({ unit: "binary", maxLength: 20 }),
      fc
        .array(fc.constantFrom("|", "\n", "\r", ":", " ", "a", "ñ", "😀"), { maxLength: 12 })
        .map((a) => a.join("")),
      fc.integer(),
    );
    fc.assert(
      fc.property(
        fc.constantFrom<Level>("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
        fc.stringMatching(/^[a-z][a-z_]{0,15}$/),
        fc.constantFrom<Result>("success", "fail", "in_progress"),
        fc.uniqueArray(fc.tuple(key, value), { selector: ([k]) => k, maxLength: 6 }),
        (level, action, result, pairs) => {
          const fields: Fields = Object.fromEntries(pairs);
          const line = formatLine(level, formatMessage(action, result, fields));
          assert.equal(line.at(-1), "\n");
          assert.equal(
            // biome-ignore lint/suspicious/noControlCharactersInRegex: the line breaks of Python's splitlines()
            line.slice(0, -1).split(/\r\n|[\n\v\f\r\x1c-\x1e\x85\u2028\u2029]/).length,
            1,
            "a single line, as Python's splitlines() sees it",
          );
          const p = courseParse(line.slice(0, -1));
          assert.equal(p.level, level);
          assert.equal(p.action, action);
          assert.equal(p.result, result);
          assert.deepEqual(
            p.fields,
            pairs.map(([k, v]) => [k, sanitize(String(v)).trim()]),
          );
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe("levels", () => {
  it("parseLevel: case-insensitive, WARN and FATAL aliases, unknown is null", () => {
    assert.equal(parseLevel("debug"), "DEBUG");
    assert.equal(parseLevel(" Info "), "INFO");
    assert.equal(parseLevel("WARN"), "WARNING");
    assert.equal(parseLevel("warning"), "WARNING");
    assert.equal(parseLevel("error"), "ERROR");
    assert.equal(parseLevel("FATAL"), "CRITICAL");
    assert.equal(parseLevel("CRITICAL"), "CRITICAL");
    assert.equal(parseLevel("LOUD"), null);
    assert.equal(parseLevel(""), null);
  });

  it("the logger drops lines below its level", () => {
    const sink = new Capture();
    const log = new Logger("WARNING", sink);
    log.debug("a", "success");
    log.info("b", "success");
    log.warn("c", "success");
    log.error("d", "fail", { code: "X" });
    log.log("CRITICAL", "e", "fail");
    assert.deepEqual(
      sink.lines.map((l) => courseParse(l).action),
      ["c", "d", "e"],
    );
    assert.equal(log.enabled("INFO"), false);
    assert.equal(log.enabled("ERROR"), true);
    log.setLevel("DEBUG");
    assert.equal(log.enabled("DEBUG"), true);
    log.debug("f", "in_progress");
    assert.equal(courseParse(sink.lines.at(-1)!).action, "f");
    assert.equal(courseParse(sink.lines.at(-1)!).level, "DEBUG");
    log.flush();
    assert.equal(sink.flushes, 1);
  });

  it("INFO logs INFO and above (the default)", () => {
    const sink = new Capture();
    const log = new Logger(undefined, sink);
    log.debug("a", "success");
    log.info("b", "success");
    assert.deepEqual(
      sink.lines.map((l) => courseParse(l).action),
      ["b"],
    );
  });
});

describe("BufferedSink", () => {
  const dir = mkdtempSync(join(tmpdir(), "quiniela-log-test-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const linesOf = (text: string) => text.split("\n").filter(Boolean);
  /** The `i` field of each line, and what it must be: every line once, in order. */
  const counters = (lines: string[]) => lines.map((l) => courseParse(l).fields[0]?.[1]);
  const upTo = (n: number) => Array.from({ length: n }, (_, i) => `${i}`);

  it("writes lines in order, asynchronously; drain() resolves once all are out", async () => {
    const path = join(dir, "out.log");
    // drain() ends the stream: sonic-boom closes any fd but 1 and 2
    const fd = openSync(path, "w");
    {
      const log = new Logger("DEBUG", new BufferedSink(fd));
      log.info("one", "success", { n: 1 });
      log.info("two", "success", { n: "ñ😀" });
      assert.equal(readFileSync(path, "utf8"), "", "nothing written while the caller runs");
      // a burst larger than one hand-off and one write
      for (let i = 0; i < 30_000; i++) log.info("burst", "success", { i, pad: "x".repeat(40) });
      await log.drain();
      const lines = linesOf(readFileSync(path, "utf8"));
      assert.equal(lines.length, 30_002);
      assert.deepEqual(
        lines.slice(0, 2).map((l) => courseParse(l).fields),
        [[["n", "1"]], [["n", "ñ😀"]]],
      );
      assert.deepEqual(counters(lines.slice(2)), upTo(30_000));
      log.info("late", "success"); // after drain (the process is exiting): dropped, no throw
      await log.drain();
      assert.equal(linesOf(readFileSync(path, "utf8")).length, 30_002);
    }
  });

  it("flush() writes what is queued synchronously (the fatal exit path)", () => {
    const path = join(dir, "sync.log");
    const fd = openSync(path, "w");
    try {
      const log = new Logger("DEBUG", new BufferedSink(fd));
      for (let i = 0; i < 3; i++) log.info("line", "success", { i });
      log.flush();
      assert.equal(linesOf(readFileSync(path, "utf8")).length, 3);
    } finally {
      closeSync(fd);
    }
  });

  /** A FIFO opened non-blocking at both ends: a pipe whose reader this test controls. */
  function fifo(name: string): { rfd: number; wfd: number } {
    const path = join(dir, name);
    execFileSync("mkfifo", [path]);
    const rfd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const wfd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    return { rfd, wfd };
  }

  it("a full non-blocking pipe (EAGAIN) does not stall the event loop; every line arrives once read", async () => {
    const { rfd, wfd } = fifo("slow");
    const log = new Logger("INFO", new BufferedSink(wfd));
    const n = 20_000; // ~1.6 MB: 25 times what the pipe holds
    for (let i = 0; i < n; i++) log.info("line", "success", { i, pad: "y".repeat(20) });
    // The pipe is full and nobody reads: a sink that retried EAGAIN in a loop would never let
    // these turns of the event loop run (the test would hang).
    for (let t = 0; t < 5; t++) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 20));
    // Now read: the retries deliver everything, in order.
    const reader = new Socket({ fd: rfd, readable: true, writable: false });
    let text = "";
    reader.setEncoding("utf8");
    const all = new Promise<void>((resolve) =>
      reader.on("data", (d: string) => {
        text += d;
        if (linesOf(text).length === n && text.endsWith("\n")) resolve();
      }),
    );
    await log.drain();
    await all;
    reader.destroy();
    assert.deepEqual(counters(linesOf(text)), upTo(n));
  });

  it("a reader that went away (EPIPE): lines are dropped, nothing throws, drain() resolves", async () => {
    const { rfd, wfd } = fifo("gone");
    closeSync(rfd);
    const log = new Logger("INFO", new BufferedSink(wfd));
    log.info("nobody", "success");
    await new Promise((r) => setTimeout(r, 10));
    log.info("listens", "success");
    log.flush();
    await log.drain();
  });
});
