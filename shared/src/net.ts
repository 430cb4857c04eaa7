// Socket helpers kept out of the codec: backpressure and orderly waits.

import type { Socket } from "node:net";

/** Resolves on 'drain', or on close/error (callers then see the socket is gone). */
export function waitDrain(socket: Socket): Promise<void> {
  if (!socket.writableNeedDrain || socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      socket.off("drain", done);
      socket.off("close", done);
      socket.off("error", done);
      resolve();
    };
    socket.on("drain", done);
    socket.on("close", done);
    socket.on("error", done);
  });
}

/** How long a connection we ended may wait for its peer to close before it is destroyed. */
export const PEER_CLOSE_GRACE_MS = 1000;

/**
 * Ends our side (after `last`) and destroys the socket if the peer has not closed within
 * PEER_CLOSE_GRACE_MS, so no peer can hold a shutdown open. Reading resumes so the peer's FIN is
 * seen even when reading was paused for backpressure.
 */
export function endThenDestroy(socket: Socket, last?: Buffer): void {
  if (last) socket.end(last);
  else socket.end();
  socket.resume();
  setTimeout(() => socket.destroy(), PEER_CLOSE_GRACE_MS).unref();
}

export function remoteIp(socket: Socket): string {
  const a = socket.remoteAddress ?? "unknown";
  return a.startsWith("::ffff:") ? a.slice(7) : a;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Exponential backoff with jitter between rounds of connection attempts: 10 ms doubling to 2 s.
 * It starts low because the common failure is an agency that started before its server listens
 * (Docker Compose starts both at once): a refused connection costs one local round trip, and a
 * 50 ms first wait was most of an agency's delay on the course's data.
 */
export class Backoff {
  static readonly FIRST_MS = 10;
  static readonly MAX_MS = 2000;
  private delay = Backoff.FIRST_MS;

  /** Sleeps the current delay (×0.5–1.5), then doubles it. */
  async wait(signal?: AbortSignal): Promise<void> {
    await sleep(this.delay * (0.5 + Math.random()), signal);
    this.delay = Math.min(this.delay * 2, Backoff.MAX_MS);
  }
}
