// A TCP proxy between agencies and the server that injects one planned fault per connection
// (cuts, resets, stalls, timed drops, a cut inside a chosen frame or TLS record).

import { createConnection, createServer, type Server, type Socket } from "node:net";
import { HEADER_SIZE, MsgType } from "../shared/src/protocol/frame.js";
import { typeName } from "./raw-client.js";
import { mix, rng } from "./rng.js";

export type FaultKind =
  | "pass"
  | "cut_up" // forward exactly N client->server bytes, then close both sides
  | "cut_down" // forward exactly N server->client bytes, then close both sides
  | "reset" // after N client->server bytes, reset both sides (RST)
  | "stall_up" // after N client->server bytes, hold that direction for a while
  | "stall_down" // after N server->client bytes, hold that direction for a while
  | "drop_timed" // close both sides after T ms, wherever the bytes are
  | "cut_up_record"; // TLS: cut the client's N-th big application-data record halfway, close

export interface FaultPlan {
  kind: FaultKind;
  /** Byte offset (cut/reset/stall), or ms for drop_timed. */
  at: number;
  /** Stall length in ms. */
  stallMs: number;
}

/**
 * A targeted cut, whatever connection it happens on: the `skip+1`-th frame of `frameType` sent
 * by `agency` is cut `offset` bytes after its start (clamped inside the frame, after its type).
 */
export interface FrameTarget {
  agency: number;
  frameType: number;
  skip: number;
  offset: number;
  /** Set when the cut happened. */
  fired?: boolean;
}

export interface ProxyConnInfo {
  index: number;
  plan: FaultPlan;
  agency: number;
  up: number;
  down: number;
  fired: boolean;
}

/** Watches a client->server byte stream frame by frame: knows each frame's start and type. */
class FrameWatch {
  private frameStart = 0;
  private header = Buffer.alloc(HEADER_SIZE);
  private headerLen = 0;
  private frameLen = -1;
  private firstPayload: number[] = [];
  agency = 0;
  private first = true;

  /** Feeds bytes starting at absolute offset `base`; calls `onFrame(start, type, len)`. */
  feed(chunk: Buffer, base: number, onFrame: (start: number, type: number, len: number) => void) {
    let i = 0;
    while (i < chunk.length) {
      const abs = base + i;
      if (this.frameLen < 0) {
        this.header[this.headerLen++] = chunk[i]!;
        i++;
        if (this.headerLen === HEADER_SIZE) {
          const len = this.header.readUInt32BE(8);
          this.frameLen = HEADER_SIZE + len;
          if (this.header[0] !== 0xfa || len > 8192) {
            this.frameLen = Number.POSITIVE_INFINITY; // not our protocol: stop watching
          }
          onFrame(this.frameStart, this.header[2]!, this.frameLen);
        }
        continue;
      }
      const end = this.frameStart + this.frameLen;
      const take = Math.min(chunk.length - i, end - abs);
      if (this.first && this.header[2] === MsgType.HELLO) {
        for (let k = 0; k < take && this.firstPayload.length < 4; k++) {
          this.firstPayload.push(chunk[i + k]!);
        }
        if (this.firstPayload.length === 4) {
          this.agency = Buffer.from(this.firstPayload).readUInt32BE(0);
        }
      }
      i += take;
      if (base + i === end) {
        this.first = false;
        this.frameStart = end;
        this.headerLen = 0;
        this.frameLen = -1;
      }
    }
  }
}

/** Watches a client->server TLS byte stream record by record (5-byte header: type, version, length). */
class TlsRecordWatch {
  private next = 0; // absolute offset of the next record header
  private header: number[] = [];

  /** Feeds bytes starting at absolute offset `base`; calls `onRecord(start, type, len)`. */
  feed(chunk: Buffer, base: number, onRecord: (start: number, type: number, len: number) => void) {
    let i = Math.max(0, this.next - base);
    while (i < chunk.length) {
      this.header.push(chunk[i]!);
      i++;
      if (this.header.length < 5) continue;
      const len = (this.header[3]! << 8) | this.header[4]!;
      onRecord(this.next, this.header[0]!, len);
      this.next += 5 + len;
      this.header = [];
      i = this.next - base;
    }
  }
}

/** TLS record type of application data (what the protocol's frames travel in). */
const TLS_APPLICATION_DATA = 0x17;
/**
 * TLS 1.3 sends the client's certificate and Finished in application-data records too; those
 * (and HELLO, DONE) are smaller than this, a BATCH of the agency is larger.
 */
const TLS_BIG_RECORD = 1024;

/**
 * A TCP proxy between agencies and the server that injects one planned fault per connection.
 * `planFor(index, r)` decides the fault of the index-th connection with its own seeded stream.
 */
export class FaultProxy {
  readonly conns: ProxyConnInfo[] = [];
  private readonly sockets = new Set<Socket>();
  private server: Server | null = null;
  port = 0;

  private readonly seen = new Map<string, number>();

  constructor(
    private readonly targetPort: number,
    private readonly seed: number,
    private readonly planFor: (index: number, r: () => number) => FaultPlan,
    readonly targets: FrameTarget[] = [],
  ) {}

  async listen(): Promise<number> {
    this.server = createServer((c) => this.onConnection(c));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const a = this.server.address();
    this.port = typeof a === "object" && a ? a.port : 0;
    return this.port;
  }

  /** Faults that actually fired, by kind. */
  summary(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const c of this.conns) {
      const k = c.fired || c.plan.kind === "pass" ? c.plan.kind : `${c.plan.kind}(not reached)`;
      out[k] = (out[k] ?? 0) + 1;
    }
    for (const t of this.targets) {
      const k = `cut_in_${typeName(t.frameType) ?? t.frameType}${t.fired ? "" : "(not reached)"}`;
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }

  private onConnection(c: Socket): void {
    const index = this.conns.length;
    const plan = this.planFor(index, rng(mix(this.seed, index)));
    const info: ProxyConnInfo = { index, plan, agency: 0, up: 0, down: 0, fired: false };
    this.conns.push(info);
    const s = createConnection({ port: this.targetPort, host: "127.0.0.1", noDelay: true });
    c.setNoDelay(true);
    this.sockets.add(c);
    this.sockets.add(s);
    let dead = false;
    const timers: NodeJS.Timeout[] = [];
    const kill = (how: "close" | "reset") => {
      if (dead) return;
      dead = true;
      for (const t of timers) clearTimeout(t);
      for (const sock of [c, s]) {
        if (how === "reset" && !sock.destroyed) sock.resetAndDestroy();
        else sock.destroy();
      }
    };
    for (const sock of [c, s]) {
      sock.on("error", () => kill("close"));
      sock.on("close", () => {
        this.sockets.delete(sock);
        const other = sock === c ? s : c;
        // let what was already written to the other side go out, then close it
        if (!dead) {
          dead = true;
          other.end();
          setTimeout(() => other.destroy(), 2000).unref();
        }
      });
    }
    s.on("end", () => c.end());
    c.on("end", () => s.end());
    if (plan.kind === "drop_timed") {
      timers.push(
        setTimeout(() => {
          info.fired = true;
          kill("close");
        }, plan.at),
      );
    }
    const watch = new FrameWatch();
    const records = new TlsRecordWatch();
    let appRecords = 0;

    const direction = (from: Socket, to: Socket, up: boolean) => {
      let sent = 0;
      let received = 0;
      let cutAt = -1;
      let cutHow: "close" | "reset" = "close";
      let stallAt = -1;
      let stalled = false;
      const held: Buffer[] = [];
      if (up && plan.kind === "cut_up") cutAt = plan.at;
      // cut_up_record: set once the record is seen (below)
      if (up && plan.kind === "reset") {
        cutAt = plan.at;
        cutHow = "reset";
      }
      if (!up && plan.kind === "cut_down") cutAt = plan.at;
      if ((up && plan.kind === "stall_up") || (!up && plan.kind === "stall_down")) {
        stallAt = plan.at;
      }
      const forward = (chunk: Buffer): void => {
        if (dead || chunk.length === 0) return;
        if (stalled) {
          held.push(chunk);
          return;
        }
        if (cutAt >= 0 && sent + chunk.length >= cutAt) {
          const part = chunk.subarray(0, cutAt - sent);
          sent += part.length;
          info.fired = true;
          if (cutHow === "reset") {
            if (part.length > 0) to.write(part);
            // give the partial bytes a moment to leave, then RST both ways
            setImmediate(() => kill("reset"));
          } else {
            dead = true;
            to.end(part);
            from.destroy();
            setTimeout(() => to.destroy(), 2000).unref();
          }
          return;
        }
        if (stallAt >= 0 && sent + chunk.length > stallAt) {
          const part = chunk.subarray(0, stallAt - sent);
          held.push(chunk.subarray(stallAt - sent));
          if (part.length > 0) to.write(part);
          sent += part.length;
          stallAt = -1;
          stalled = true;
          info.fired = true;
          from.pause();
          timers.push(
            setTimeout(() => {
              stalled = false;
              const rest = held.splice(0);
              for (const b of rest) forward(b);
              if (!dead) from.resume();
            }, plan.stallMs),
          );
          return;
        }
        sent += chunk.length;
        if (up) info.up = sent;
        else info.down = sent;
        if (!to.write(chunk)) {
          from.pause();
          to.once("drain", () => {
            if (!stalled && !dead) from.resume();
          });
        }
      };
      from.on("data", (chunk: Buffer) => {
        const base = received;
        received += chunk.length;
        if (up && plan.kind === "cut_up_record") {
          records.feed(chunk, base, (start, type, len) => {
            if (type !== TLS_APPLICATION_DATA || len < TLS_BIG_RECORD || cutAt >= 0) return;
            if (appRecords++ === plan.at) cutAt = start + 5 + Math.floor(len / 2);
          });
        } else if (up) {
          watch.feed(chunk, base, (start, type, len) => {
            const agency = watch.agency;
            if (agency === 0 || cutAt >= 0 || !Number.isFinite(len)) return;
            const key = `${agency}/${type}`;
            const nth = this.seen.get(key) ?? 0;
            this.seen.set(key, nth + 1);
            for (const t of this.targets) {
              if (t.fired || t.agency !== agency || t.frameType !== type || t.skip !== nth)
                continue;
              t.fired = true;
              cutAt = start + Math.min(Math.max(3, t.offset), len - 1);
              break;
            }
          });
          info.agency = watch.agency;
        }
        forward(chunk);
      });
    };
    direction(c, s, true);
    direction(s, c, false);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }
}
