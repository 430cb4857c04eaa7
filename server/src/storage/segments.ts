// Bump allocator for encoded rows: batches are encoded in place into large segments, so storing a
// batch allocates nothing per row (and usually nothing per batch). A segment is dropped when full;
// the rows taken from it stay valid (they are views) until their write completes.

export class SegmentAllocator {
  private seg: Buffer;
  private pos = 0;

  constructor(private readonly segmentSize = 1 << 20) {
    this.seg = Buffer.allocUnsafe(segmentSize);
  }

  /** A buffer with at least `bytes` free from `start`. */
  reserve(bytes: number): { buf: Buffer; start: number } {
    if (this.pos + bytes > this.seg.length) {
      this.seg = Buffer.allocUnsafe(Math.max(this.segmentSize, bytes));
      this.pos = 0;
    }
    return { buf: this.seg, start: this.pos };
  }

  /** Marks seg[start..end) as used and returns it. */
  take(end: number): Buffer {
    const out = this.seg.subarray(this.pos, end);
    this.pos = end;
    return out;
  }
}
