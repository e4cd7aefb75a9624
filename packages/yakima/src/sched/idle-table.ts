/** Position of an item waiting with no timeout (kept out of the heap). */
const FOREVER = -2;

/**
 * Where an `IdleTable` keeps each item's position: its heap index, or -2 for an item waiting
 * with no timeout (out of the heap). A Map by default. Yakima keeps it in the VM
 * (`Vm.idlePosition`, -1 when not in the table): a VM serving requests enters and leaves the
 * table two or three times per request, and with 10,000 VMs the hash-table lookups of that
 * took ~1.5 % of the CPU.
 */
export interface IdlePositions<T> {
  get(item: T): number | undefined;
  set(item: T, position: number): void;
  delete(item: T): void;
}

/**
 * The idle table (paper 3.2): VMs that executed the idle virtual instruction, keyed by the
 * host tick at which their timeout expires (`Infinity` for no timeout). Yakima wakes a VM
 * when a virtual interrupt arrives for it or its deadline passes. A binary min-heap on the
 * deadline, so finding the next wake-up is O(1) and insert/remove O(log n) for thousands of VMs.
 * Items waiting with no timeout are kept out of the heap (O(1) in and out). The heap is two
 * parallel arrays and sifts move entries into a hole: a VM serving a request idles two or three
 * times per request, and an object per entry plus swaps made garbage and Map writes at each.
 */
export class IdleTable<T> {
  /** Heap order: `items[i]` waits until `deadlines[i]` (host ticks, finite). */
  private readonly items: T[] = [];
  private readonly deadlines: number[] = [];
  /** How many items wait with no timeout (deadline Infinity): their position is `FOREVER`. */
  private foreverCount = 0;

  /** @param index where each item's heap position is kept (default: a Map). */
  constructor(private readonly index: IdlePositions<T> = new Map<T, number>()) {}

  get size(): number {
    return this.items.length + this.foreverCount;
  }

  has(item: T): boolean {
    return this.index.get(item) !== undefined;
  }

  /** The deadline `item` waits for (host ticks), or undefined when it is not in the table. */
  deadlineOf(item: T): number | undefined {
    const i = this.index.get(item);
    if (i === FOREVER) return Infinity;
    return i === undefined ? undefined : this.deadlines[i]!;
  }

  /** Add (or re-key) `item` with an absolute deadline in host ticks (`Infinity`: none). */
  add(item: T, deadline: number): void {
    this.remove(item);
    if (deadline === Infinity) {
      this.index.set(item, FOREVER);
      this.foreverCount++;
      return;
    }
    this.items.push(item);
    this.deadlines.push(deadline);
    this.up(this.items.length - 1, item, deadline);
  }

  /** Remove `item` if present. */
  remove(item: T): boolean {
    const i = this.index.get(item);
    if (i === undefined) return false;
    this.index.delete(item);
    if (i === FOREVER) {
      this.foreverCount--;
      return true;
    }
    const last = this.items.pop()!;
    const lastDeadline = this.deadlines.pop()!;
    if (i < this.items.length) {
      // The last entry fills the hole at i: it sifts down or up from there.
      if (i > 0 && this.deadlines[(i - 1) >> 1]! > lastDeadline) this.up(i, last, lastDeadline);
      else this.down(i, last, lastDeadline);
    }
    return true;
  }

  /** Earliest deadline in host ticks, or `Infinity` when empty or nobody has a timeout. */
  nextDeadline(): number {
    return this.items.length > 0 ? this.deadlines[0]! : Infinity;
  }

  /** Remove and return every item whose deadline is `<= now`, earliest first. */
  expire(now: number): T[] {
    const out: T[] = [];
    while (this.items.length > 0 && this.deadlines[0]! <= now) {
      const item = this.items[0]!;
      this.remove(item);
      out.push(item);
    }
    return out;
  }

  /** Place `item` (deadline `d`) at hole `i` or above it. */
  private up(i: number, item: T, d: number): void {
    const { items, deadlines, index } = this;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (deadlines[p]! <= d) break;
      items[i] = items[p]!;
      deadlines[i] = deadlines[p]!;
      index.set(items[i]!, i);
      i = p;
    }
    items[i] = item;
    deadlines[i] = d;
    index.set(item, i);
  }

  /** Place `item` (deadline `d`) at hole `i` or below it. */
  private down(i: number, item: T, d: number): void {
    const { items, deadlines, index } = this;
    const n = items.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const m = r < n && deadlines[r]! < deadlines[l]! ? r : l;
      if (deadlines[m]! >= d) break;
      items[i] = items[m]!;
      deadlines[i] = deadlines[m]!;
      index.set(items[i]!, i);
      i = m;
    }
    items[i] = item;
    deadlines[i] = d;
    index.set(item, i);
  }
}
