/**
 * The idle table (paper 3.2): VMs that executed the idle virtual instruction, keyed by the
 * host tick at which their timeout expires (`Infinity` for no timeout). Yakima wakes a VM
 * when a virtual interrupt arrives for it or its deadline passes. A binary min-heap on the
 * deadline, so finding the next wake-up is O(1) and insert/remove O(log n) for thousands of VMs.
 */
export class IdleTable<T> {
  private heap: { deadline: number; item: T }[] = [];
  private readonly index = new Map<T, number>();

  get size(): number {
    return this.heap.length;
  }

  has(item: T): boolean {
    return this.index.has(item);
  }

  /** The deadline `item` waits for (host ticks), or undefined when it is not in the table. */
  deadlineOf(item: T): number | undefined {
    const i = this.index.get(item);
    return i === undefined ? undefined : this.heap[i]!.deadline;
  }

  /** Add (or re-key) `item` with an absolute deadline in host ticks. */
  add(item: T, deadline: number): void {
    this.remove(item);
    this.heap.push({ deadline, item });
    this.index.set(item, this.heap.length - 1);
    this.up(this.heap.length - 1);
  }

  /** Remove `item` if present. */
  remove(item: T): boolean {
    const i = this.index.get(item);
    if (i === undefined) return false;
    this.index.delete(item);
    const last = this.heap.pop()!;
    if (i < this.heap.length) {
      this.heap[i] = last;
      this.index.set(last.item, i);
      this.down(i);
      this.up(i);
    }
    return true;
  }

  /** Earliest deadline in host ticks, or `Infinity` when empty or nobody has a timeout. */
  nextDeadline(): number {
    return this.heap.length > 0 ? this.heap[0]!.deadline : Infinity;
  }

  /** Remove and return every item whose deadline is `<= now`, earliest first. */
  expire(now: number): T[] {
    const out: T[] = [];
    while (this.heap.length > 0 && this.heap[0]!.deadline <= now) {
      const { item } = this.heap[0]!;
      this.remove(item);
      out.push(item);
    }
    return out;
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.deadline <= h[i]!.deadline) break;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && h[l]!.deadline < h[m]!.deadline) m = l;
      if (r < h.length && h[r]!.deadline < h[m]!.deadline) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private swap(a: number, b: number): void {
    const h = this.heap;
    [h[a], h[b]] = [h[b]!, h[a]!];
    this.index.set(h[a]!.item, a);
    this.index.set(h[b]!.item, b);
  }
}
