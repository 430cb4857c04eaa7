// Bump allocator for encoded rows: batches are encoded in place into large segments, so storing a
// batch allocates nothing per row (and usually nothing per batch). A segment is dropped when full;
// the rows taken from it stay valid (they are views) until their write completes.
//
// Rows can also be leased: a leased segment, once full and every lease on it released (its rows
// are on disk), is kept as a spare and filled again instead of left to the garbage collector.
// Segments live outside V8's heap, so dead ones are only freed when external memory pressure
// triggers a collection: at 5 × 1M that let the server's RSS climb by tens of MB of rows already
// written. Recycling keeps it to the few segments in flight.

const SPARES = 4;

export class SegmentAllocator {
  private seg: Buffer;
  private pos = 0;
  /** Leases not yet released, per segment memory. */
  private readonly leases = new Map<ArrayBufferLike, number>();
  private readonly spares: Buffer[] = [];

  /** With `recycle`, rows must be taken with lease() and released; take() is for the other mode. */
  constructor(
    private readonly segmentSize = 1 << 20,
    private readonly recycle = false,
  ) {
    this.seg = Buffer.allocUnsafe(segmentSize);
  }

  /** A buffer with at least `bytes` free from `start`. */
  reserve(bytes: number): { buf: Buffer; start: number } {
    if (this.pos + bytes > this.seg.length) {
      const full = this.seg;
      const spare = bytes <= this.segmentSize ? this.spares.pop() : undefined;
      this.seg = spare ?? Buffer.allocUnsafe(Math.max(this.segmentSize, bytes));
      this.pos = 0;
      if (this.recycle && !this.leases.has(full.buffer)) this.keep(full);
    }
    return { buf: this.seg, start: this.pos };
  }

  /** Marks seg[start..end) as used and returns it. */
  take(end: number): Buffer {
    const out = this.seg.subarray(this.pos, end);
    this.pos = end;
    return out;
  }

  /** Like take, but the segment may be reused once every lease on it is released. */
  lease(end: number): Buffer {
    if (!this.recycle) return this.take(end);
    const key = this.seg.buffer;
    this.leases.set(key, (this.leases.get(key) ?? 0) + 1);
    return this.take(end);
  }

  /** The leased rows are no longer needed (written, or failed). */
  release(rows: Buffer): void {
    if (!this.recycle) return;
    const key = rows.buffer;
    const n = (this.leases.get(key) ?? 1) - 1;
    if (n > 0) {
      this.leases.set(key, n);
      return;
    }
    this.leases.delete(key);
    // The segment being filled is still in use; a full one can be filled again.
    if (key !== this.seg.buffer) this.keep(Buffer.from(key, 0, key.byteLength));
  }

  private keep(seg: Buffer): void {
    if (seg.length === this.segmentSize && this.spares.length < SPARES) this.spares.push(seg);
  }
}
