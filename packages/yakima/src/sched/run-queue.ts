/**
 * Yakima's round-robin run queue (paper 3.2: "a simple round-robin CPU scheduler coupled with
 * a timer to prevent a VM from stealing the CPU"). A VM is in the queue at most once.
 */
export class RunQueue<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  private readonly queued = new Set<T>();

  get size(): number {
    return this.queued.size;
  }

  has(item: T): boolean {
    return this.queued.has(item);
  }

  /** Append at the tail, unless already queued. */
  push(item: T): void {
    if (this.queued.has(item)) return;
    this.queued.add(item);
    this.items.push(item);
  }

  /** Take the head, or undefined when empty. */
  shift(): T | undefined {
    while (this.head < this.items.length) {
      const item = this.items[this.head];
      this.items[this.head++] = undefined;
      if (item !== undefined && this.queued.delete(item)) {
        this.compact();
        return item;
      }
    }
    this.compact();
    return undefined;
  }

  /** Remove an item wherever it is (a VM that exited or was stopped). */
  remove(item: T): void {
    if (!this.queued.delete(item)) return;
    const i = this.items.indexOf(item, this.head);
    if (i >= 0) this.items[i] = undefined;
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
