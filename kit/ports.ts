// Loopback ports: one a restarted server can come back on after a crash (freePort), and a
// listening socket to hand to a server as it starts (bindLoopback).

import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/**
 * A free loopback port below the kernel's ephemeral range. A restarted server must get the same
 * port back; inside the ephemeral range an agency retrying against the dead port can end up
 * connected to itself (TCP simultaneous open) and hold the port, or another process can take it.
 */
export async function freePort(): Promise<number> {
  let low = 32768;
  try {
    low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").split(/\s+/)[0]);
  } catch {
    // keep the Linux default
  }
  const lo = Math.max(10_000, low - 12_000);
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = lo + Math.floor(Math.random() * (low - lo));
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen({ port, host: "127.0.0.1", exclusive: true }, () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error("no free port below the ephemeral range");
}

/** A loopback socket bound and listening here, to be handed to a child process. */
export interface BoundListener {
  port: number;
  /** Its file descriptor (to pass in a child's stdio). */
  fd: number;
  /** Closes this process's copy (a child that inherited it keeps listening). */
  close(): void;
}

/**
 * Binds 127.0.0.1 on a port the kernel picks and listens. null when the descriptor cannot be
 * had: Node exposes it only on its internal handle (`_handle.fd`, Unix), not in the public API.
 */
export async function bindLoopback(backlog: number): Promise<BoundListener | null> {
  const server = createServer();
  // Nothing may connect before it is handed over and closed here, with no I/O turn of the event
  // loop in between (as soon as the caller has it): this process would accept that connection.
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: 0, host: "127.0.0.1", backlog }, resolve);
  });
  const fd = (server as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  const address = server.address();
  if (typeof fd !== "number" || fd < 0 || address === null || typeof address === "string") {
    server.close();
    return null;
  }
  return { port: address.port, fd, close: () => server.close() };
}
