// An append-only file with group commit. Durability: an append's callback runs only after its
// bytes were written and fdatasync'ed. While one write+sync is in flight, every append that
// arrives (from any agency) queues and goes out in the next single writev+sync, so concurrent
// agencies share the cost of each sync. The sync runs on libuv's thread pool
// (FileHandle.datasync), never blocking the event loop.

import { type FileHandle, open } from "node:fs/promises";
import type { SyncMode } from "../../../shared/src/config.js";

type Done = (err: Error | null) => void;

/**
 * An append-only file with group commit: an append is acknowledged once its bytes are durable
 * (or written, with sync "none"). Appends are written in call order.
 */
export class GroupCommitFile {
  private pending: Buffer[] = [];
  private waiters: Done[] = [];
  private writing = false;
  private scheduled = false;
  private failure: Error | null = null;
  /** flush() callers waiting for the writes in progress: told the outcome, failure included. */
  private idle: Done[] = [];
  /** Bytes durable on disk. */
  size: number;
  syncs = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly sync: SyncMode,
    initialSize: number,
  ) {
    this.size = initialSize;
  }

  /** Callback form, used on the hot path (no promise per batch). */
  appendCb(buf: Buffer, done: Done): void {
    if (this.failure) {
      done(this.failure);
      return;
    }
    this.pending.push(buf);
    this.waiters.push(done);
    this.schedule();
  }

  append(buf: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) =>
      this.appendCb(buf, (err) => (err ? reject(err) : resolve())),
    );
  }

  /**
   * Resolves when everything appended so far is durable; rejects when a write failed (then
   * nothing appended since can become durable: the file is unusable).
   */
  flush(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (!this.writing && this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) =>
      this.idle.push((err) => (err ? reject(err) : resolve())),
    );
  }

  private schedule(): void {
    if (this.writing || this.scheduled) return;
    this.scheduled = true;
    // Let every frame already received in this event-loop turn join the same write.
    setImmediate(() => {
      this.scheduled = false;
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    while (this.pending.length > 0 && !this.failure) {
      const bufs = this.pending;
      const waiters = this.waiters;
      this.pending = [];
      this.waiters = [];
      try {
        let bytes = 0;
        for (let i = 0; i < bufs.length; i += 1024) {
          bytes += await writeAll(this.fh, bufs.slice(i, i + 1024));
        }
        if (this.sync === "fdatasync") await this.fh.datasync();
        else if (this.sync === "fsync") await this.fh.sync();
        this.syncs++;
        this.size += bytes;
        for (const w of waiters) w(null);
      } catch (err) {
        this.failure = err instanceof Error ? err : new Error(String(err));
        for (const w of waiters) w(this.failure);
        for (const w of this.waiters) w(this.failure);
        this.waiters = [];
        this.pending = [];
      }
    }
    this.writing = false;
    const idle = this.idle;
    this.idle = [];
    for (const w of idle) w(this.failure);
  }

  async close(): Promise<void> {
    await this.flush().catch(() => undefined);
    await this.fh.close();
  }
}

/** writev until every byte is written (a regular file may still take a short write). */
async function writeAll(fh: FileHandle, bufs: Buffer[]): Promise<number> {
  let total = 0;
  for (const b of bufs) total += b.length;
  let written = 0;
  let rest = bufs;
  while (written < total) {
    const { bytesWritten } = await fh.writev(rest);
    written += bytesWritten;
    if (written < total) {
      // drop fully written buffers and cut the partly written one
      let skip = bytesWritten;
      const next: Buffer[] = [];
      for (const b of rest) {
        if (skip >= b.length) {
          skip -= b.length;
          continue;
        }
        next.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
      rest = next;
    }
  }
  return total;
}

/** Opens (creating if needed) an append-only file, first cutting it to `keepBytes`. */
export async function openAppend(
  path: string,
  keepBytes: number | null,
): Promise<{ fh: FileHandle; size: number }> {
  const fh = await open(path, "a+");
  let size = (await fh.stat()).size;
  if (keepBytes !== null && keepBytes < size) {
    await fh.truncate(keepBytes);
    await fh.datasync();
    size = keepBytes;
  }
  return { fh, size };
}
