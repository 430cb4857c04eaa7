// A raw TCP peer for hostile-input tests: sends exactly the bytes given and collects the reply.

import { connect } from "node:net";
import { isFault } from "../../../shared/src/errors.js";
import { FrameDecoder } from "../../../shared/src/protocol/decoder.js";
import { type Frame, MsgType } from "../../../shared/src/protocol/frame.js";
import { BatchBuilder } from "../../../shared/src/protocol/messages.js";

export interface RawResult {
  /** Frames decoded from what the server sent back. */
  frames: Frame[];
  bytes: Buffer;
  /** True when the server closed the connection (false: we gave up waiting). */
  closedByServer: boolean;
}

/** A BATCH frame of `rows` (first_name, last_name, document, birthdate, number), the first at `first`. */
export function batch(seq: number, first: number, rows: string[][]): Buffer {
  const b = new BatchBuilder();
  for (const r of rows) {
    if (!b.addStrings(r)) throw new Error(`row does not fit a batch: ${r.join(",")}`);
  }
  return b.build(MsgType.BATCH, seq, first);
}

/** Sends `chunks` (optionally half-closing), then waits for the server to close, up to `waitMs`. */
export function exchange(
  port: number,
  chunks: Buffer[],
  opts: { end?: boolean; waitMs?: number } = {},
): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: "127.0.0.1", port });
    const got: Buffer[] = [];
    let closedByServer = false;
    const timer = setTimeout(() => sock.destroy(), opts.waitMs ?? 5000);
    sock.on("connect", () => {
      for (const c of chunks) sock.write(c);
      if (opts.end) sock.end();
    });
    sock.on("data", (d: Buffer) => got.push(d));
    sock.on("end", () => {
      closedByServer = true;
    });
    sock.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ECONNRESET" || err.code === "EPIPE") closedByServer = true;
      else reject(err);
    });
    sock.on("close", () => {
      clearTimeout(timer);
      const bytes = Buffer.concat(got);
      const dec = new FrameDecoder();
      dec.push(bytes);
      const frames: Frame[] = [];
      for (let f = dec.next(); f && !isFault(f); f = dec.next()) frames.push(f as Frame);
      resolve({ frames, bytes, closedByServer });
    });
  });
}
