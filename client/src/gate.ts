// A counting semaphore: at most `size` holders at a time, waiters served in arrival order.

export class Gate {
  private free: number;
  private readonly waiters: Array<() => void> = [];

  constructor(size: number) {
    if (!(size >= 1)) throw new RangeError(`gate size must be ≥ 1: ${size}`);
    this.free = size;
  }

  /** Resolves when a slot is free, with the function that gives it back (idempotent). */
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiters.push(resolve));
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const next = this.waiters.shift();
      if (next) next();
      else this.free++;
    };
  }
}
