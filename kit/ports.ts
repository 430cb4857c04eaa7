// Loopback ports for servers that must come back on the same port after a crash.

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
