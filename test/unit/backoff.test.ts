import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it, mock } from "node:test";
import { Backoff } from "../../shared/src/net.js";

describe("Backoff", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
  afterEach(() => {
    mock.timers.reset();
    mock.restoreAll();
  });

  /** Whether wait() has resolved after `ms` of fake time. */
  async function waitsAtMost(b: Backoff, ms: number): Promise<boolean> {
    let done = false;
    const p = b.wait().then(() => {
      done = true;
    });
    mock.timers.tick(ms);
    await Promise.resolve();
    await Promise.resolve();
    const over = done;
    if (!over) mock.timers.tick(1e9); // let it end before the next one starts
    await p;
    return over;
  }

  it("waits 10 ms (jittered ×0.5–1.5) first, doubling to 2 s", async () => {
    mock.method(Math, "random", () => 0.5); // no jitter: exactly the delay
    // two in step: one shows each wait is not over a millisecond early, the other that it is
    // over on time
    const early = new Backoff();
    const onTime = new Backoff();
    for (const ms of [10, 20, 40, 80, 160, 320, 640, 1280, 2000, 2000]) {
      assert.equal(await waitsAtMost(early, ms - 1), false, `not before ${ms} ms`);
      assert.equal(await waitsAtMost(onTime, ms), true, `by ${ms} ms`);
    }
  });

  it("jitter stays within half and one and a half times the delay", async () => {
    mock.method(Math, "random", () => 0.999);
    assert.equal(await waitsAtMost(new Backoff(), 14), false);
    assert.equal(await waitsAtMost(new Backoff(), 15), true);
    mock.method(Math, "random", () => 0);
    assert.equal(await waitsAtMost(new Backoff(), 4), false);
    assert.equal(await waitsAtMost(new Backoff(), 5), true);
  });
});
