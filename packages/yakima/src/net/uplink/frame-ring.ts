/**
 * Bounded single-producer / single-consumer rings of Ethernet frames in a SharedArrayBuffer:
 * how the user-mode uplink's worker thread and Yakima's main thread pass frames without
 * copying them through `postMessage` (a structured clone and an event-loop task per message).
 *
 * Layout of one ring (`FrameRing.bytesFor(capacity)` bytes at `offset`, 8-byte aligned):
 * a control block of `CTL_WORDS` Int32 words, then `capacity` data bytes. Each record is an
 * 8-byte header — frame length in bytes (u32), `FRAME_CSUM` flags (u32) — and the frame bytes,
 * padded to a multiple of 8. A record that does not fit before the end of the data area is
 * preceded by a wrap marker (length `WRAP`) and written at offset 0. Head and tail are
 * free-running 32-bit byte counters (position = counter mod capacity), so full and empty
 * differ without a spare slot. A frame that does not fit is dropped and counted (`drops`):
 * the ring never grows, and TCP above retransmits.
 *
 * Wake-ups (producer → sleeping consumer): the consumer sets its SLEEPING word before it waits
 * (with `Atomics.waitAsync` on BELL) and the producer rings BELL only when it takes that flag
 * from 1 to 0, so a consumer that is busy polling costs the producer one `Atomics.compareExchange`
 * and no system call.
 */
import { FRAME_CSUM } from '../checksum-offload.js';

/** Int32 word indices of a ring's control block. */
const HEAD = 0; // bytes written (producer stores)
const TAIL = 1; // bytes consumed (consumer stores)
const DROPS = 2; // frames dropped because the ring was full
const SLEEPING = 3; // 1: the consumer waits for BELL
const BELL = 4; // incremented (then notified) to wake the consumer
const FRAMES = 5; // frames pushed
/** Control block size in Int32 words (32 bytes: keeps the data area 8-byte aligned). */
const CTL_WORDS = 8;
const REC_HEADER = 8;
const WRAP = 0xffffffff;

/** Largest frame a ring takes (bytes): a maximal Ethernet II frame without FCS, as the NIC's limit. */
export const MAX_RING_FRAME = 1514;

type WaitAsync = (ta: Int32Array, index: number, value: number, timeout?: number) => { async: boolean; value: Promise<string> | string };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/** Counters of one ring (frames). */
export interface FrameRingStats {
  /** Frames pushed into the ring. */
  frames: number;
  /** Frames dropped because the ring was full (or too large for a ring). */
  drops: number;
}

/**
 * One direction of a frame channel between two threads. Exactly one thread may call `push` /
 * `wakeConsumer` and exactly one other `drain` / `sleep` / `awake` (each thread builds its own
 * `FrameRing` over the same SharedArrayBuffer region).
 */
export class FrameRing {
  private readonly ctl: Int32Array;
  private readonly data: Uint8Array;
  private readonly view: DataView;
  private readonly mask: number;

  /** Bytes a ring of `capacity` data bytes takes in the SharedArrayBuffer. */
  static bytesFor(capacity: number): number {
    return CTL_WORDS * 4 + capacity;
  }

  /**
   * @param sab the shared buffer; `offset` (bytes, multiple of 8) where the ring starts.
   * @param capacity data bytes, a power of two from 4096 to 2^30.
   * @throws RangeError for a bad capacity or offset, or when the region does not fit in `sab`.
   */
  constructor(sab: SharedArrayBuffer, offset: number, readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 4096 || capacity > 2 ** 30 || (capacity & (capacity - 1)) !== 0) {
      throw new RangeError(`frame ring capacity ${capacity} is not a power of two from 4096 to 2^30 bytes`);
    }
    if (offset % 8 !== 0 || offset + FrameRing.bytesFor(capacity) > sab.byteLength) {
      throw new RangeError(`frame ring at ${offset} (+${FrameRing.bytesFor(capacity)} bytes) does not fit a ${sab.byteLength}-byte buffer`);
    }
    this.ctl = new Int32Array(sab, offset, CTL_WORDS);
    this.data = new Uint8Array(sab, offset + CTL_WORDS * 4, capacity);
    this.view = new DataView(sab, offset + CTL_WORDS * 4, capacity);
    this.mask = capacity - 1;
  }

  /** Counters (readable from either thread). */
  get stats(): FrameRingStats {
    return { frames: Atomics.load(this.ctl, FRAMES) >>> 0, drops: Atomics.load(this.ctl, DROPS) >>> 0 };
  }

  /** Bytes in use (records, padding and wrap markers). */
  get usedBytes(): number {
    return (Atomics.load(this.ctl, HEAD) - Atomics.load(this.ctl, TAIL)) >>> 0;
  }

  /** True when no record is waiting: one atomic load pair, the cost of an idle poll. */
  get isEmpty(): boolean {
    return Atomics.load(this.ctl, HEAD) === Atomics.load(this.ctl, TAIL);
  }

  /**
   * Producer: append a frame with its `FRAME_CSUM` flags. @returns false (and counts a drop)
   * when the ring has no room or the frame is empty or larger than `MAX_RING_FRAME`.
   */
  push(frame: Uint8Array, flags = 0): boolean {
    const len = frame.length;
    const rec = (REC_HEADER + len + 7) & ~7;
    if (len === 0 || len > MAX_RING_FRAME) return this.drop();
    const head = Atomics.load(this.ctl, HEAD) >>> 0;
    const used = (head - (Atomics.load(this.ctl, TAIL) >>> 0)) >>> 0;
    const pos = head & this.mask;
    const toEnd = this.capacity - pos;
    const pad = toEnd < rec ? toEnd : 0;
    if (used + pad + rec > this.capacity) return this.drop();
    let at = pos;
    if (pad) {
      this.view.setUint32(pos, WRAP, true);
      at = 0;
    }
    this.view.setUint32(at, len, true);
    this.view.setUint32(at + 4, flags & (FRAME_CSUM.VALID | FRAME_CSUM.PARTIAL), true);
    this.data.set(frame, at + REC_HEADER);
    Atomics.add(this.ctl, FRAMES, 1);
    // The store publishes the record: the consumer reads HEAD before the bytes.
    Atomics.store(this.ctl, HEAD, (head + pad + rec) | 0);
    return true;
  }

  private drop(): false {
    Atomics.add(this.ctl, DROPS, 1);
    return false;
  }

  /**
   * Consumer: take up to `max` frames, oldest first, each as a fresh copy (the ring's bytes are
   * reused as soon as the tail moves). @returns the number taken.
   */
  drain(each: (frame: Uint8Array, flags: number) => void, max = Infinity): number {
    let tail = Atomics.load(this.ctl, TAIL) >>> 0;
    const head = Atomics.load(this.ctl, HEAD) >>> 0;
    let n = 0;
    while (tail !== head && n < max) {
      let pos = tail & this.mask;
      let len = this.view.getUint32(pos, true);
      if (len === WRAP) {
        tail = (tail + (this.capacity - pos)) >>> 0;
        pos = 0;
        len = this.view.getUint32(0, true);
      }
      const flags = this.view.getUint32(pos + 4, true);
      const frame = this.data.slice(pos + REC_HEADER, pos + REC_HEADER + len);
      tail = (tail + ((REC_HEADER + len + 7) & ~7)) >>> 0;
      n++;
      // Free the space before handing the frame on: `each` may make the producer push (same thread only in tests).
      Atomics.store(this.ctl, TAIL, tail | 0);
      each(frame, flags);
    }
    return n;
  }

  /** Producer: wake the consumer if it sleeps (one compare-exchange when it does not). */
  wakeConsumer(): void {
    if (Atomics.compareExchange(this.ctl, SLEEPING, 1, 0) === 1) {
      Atomics.add(this.ctl, BELL, 1);
      Atomics.notify(this.ctl, BELL);
    }
  }

  /**
   * Consumer: announce that it stops polling; the next `push` + `wakeConsumer` rings the bell.
   * Drain once more after this (a frame pushed just before it was not rung for).
   */
  sleep(): void {
    Atomics.store(this.ctl, SLEEPING, 1);
  }

  /** Consumer: announce that it polls again (producers stop ringing). */
  awake(): void {
    Atomics.store(this.ctl, SLEEPING, 0);
  }

  /** The bell's current value (pass it to `waitBell`). */
  get bell(): number {
    return Atomics.load(this.ctl, BELL);
  }

  /**
   * Consumer: a promise that settles when the bell has moved from `seen` (at once if it
   * already has). It does not keep the event loop alive by itself.
   */
  waitBell(seen: number): Promise<unknown> {
    const r = waitAsync(this.ctl, BELL, seen);
    return r.async ? (r.value as Promise<string>) : Promise.resolve(r.value);
  }

  /** Either side: settle a pending `waitBell` (used to stop a consumer's wait loop). */
  ringBell(): void {
    Atomics.add(this.ctl, BELL, 1);
    Atomics.notify(this.ctl, BELL);
  }
}

/**
 * Keep draining `ring` whenever its producer rings, until `stop()`: drain, announce sleep, drain
 * again (frames pushed in between), then wait for the bell. `each` gets every frame; `batchEnd`
 * runs after each drained batch that had frames. A busy consumer should also call `drain` on
 * its own schedule (and `awake()` while it does) so producers need not ring.
 * @returns `stop`, which ends the loop (its pending wait settles).
 */
export function consumeOnBell(ring: FrameRing, each: (frame: Uint8Array, flags: number) => void, batchEnd: () => void, isPolled: () => boolean = () => false): () => void {
  let stopped = false;
  const loop = (): void => {
    if (stopped) return;
    const seen = ring.bell;
    try {
      let n = ring.drain(each);
      if (!isPolled()) {
        ring.sleep();
        n += ring.drain(each);
      }
      if (n > 0) batchEnd();
    } finally {
      // Whatever a handler threw, keep listening: a dead loop would strand every later frame.
      void ring.waitBell(seen).then(loop);
    }
  };
  loop();
  return () => {
    stopped = true;
    ring.ringBell();
  };
}
