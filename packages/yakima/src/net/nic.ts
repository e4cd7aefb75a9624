import { ETH_FRAME_MAX, ETH_FRAME_MIN, FRAME_FLAG } from '@denali/image-format';
import { FRAME_CSUM, checksumsFillable, checksumsValid, fillChecksums } from './checksum-offload.js';

/** Frames each of a NIC's FIFOs holds before it drops (paper 3.2: Yakima keeps Rx and Tx FIFOs per VM). */
export const NIC_FIFO_FRAMES = 256;

/** Per-NIC counters. Every dropped frame is counted in exactly one of the `*Drops` fields. */
export interface NicStats {
  txFrames: number;
  txBytes: number;
  /** NET_SEND frames refused because the Tx FIFO was full (the guest sees DONE < COUNT). */
  txFifoFull: number;
  /** NET_SEND frames dropped for a length outside [ETH_FRAME_MIN, ETH_FRAME_MAX]. */
  txBadLength: number;
  /** NET_SEND frames dropped for a FLAGS bit that is not a Tx flag (`FRAME_FLAG`). */
  txBadFlags: number;
  /**
   * NET_SEND TCP/UDP frames whose checksums Yakima took over (`FRAME_FLAG.TX_CSUM`): filled in
   * when the frame reaches a port that reads them (`FRAME_CSUM.PARTIAL`).
   */
  txCsumFilled: number;
  /** NET_RECV frames reported with `FRAME_FLAG.RX_CSUM_VALID`. */
  rxCsumValid: number;
  /** Frames dropped by the switch because their source MAC was not this NIC's. */
  txSpoofDrops: number;
  rxFrames: number;
  rxBytes: number;
  /** Frames for this VM dropped because its Rx FIFO was full. */
  rxFifoDrops: number;
}

/** A bounded FIFO of frames, each with a flags word (`FRAME_CSUM` bits). */
export class FrameFifo {
  private items: Uint8Array[] = [];
  private flags: number[] = [];
  private head = 0;
  constructor(readonly capacity: number) {}
  get length(): number {
    return this.items.length - this.head;
  }
  get full(): boolean {
    return this.length >= this.capacity;
  }
  /** Append with its flags; false (and nothing stored) when full. */
  push(frame: Uint8Array, flags = 0): boolean {
    if (this.full) return false;
    this.items.push(frame);
    this.flags.push(flags);
    return true;
  }
  /** The flags of the frame `shift` returns next (0 when empty). */
  headFlags(): number {
    return this.head < this.items.length ? this.flags[this.head]! : 0;
  }
  shift(): Uint8Array | undefined {
    if (this.head >= this.items.length) return undefined;
    const f = this.items[this.head]!;
    this.items[this.head++] = undefined as unknown as Uint8Array;
    if (this.head >= 64 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.flags = this.flags.slice(this.head);
      this.head = 0;
    }
    return f;
  }
  peek(): Uint8Array | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }
}

/**
 * A VM's virtual NIC (paper 3.1.2, 3.2): a MAC assigned by Yakima, a Tx FIFO the guest fills
 * with one NET_SEND for any number of frames, and an Rx FIFO the switch fills and the guest
 * drains with NET_RECV after a batched NET_RX interrupt. Bounded both ways; drops are counted.
 */
export class NicDevice {
  readonly tx = new FrameFifo(NIC_FIFO_FRAMES);
  readonly rx = new FrameFifo(NIC_FIFO_FRAMES);
  readonly stats: NicStats = {
    txFrames: 0,
    txBytes: 0,
    txFifoFull: 0,
    txBadLength: 0,
    txBadFlags: 0,
    txCsumFilled: 0,
    rxCsumValid: 0,
    txSpoofDrops: 0,
    rxFrames: 0,
    rxBytes: 0,
    rxFifoDrops: 0,
  };

  constructor(
    /** 6-byte MAC address. */
    readonly mac: Uint8Array,
    /** Raise the VM's NET_RX interrupt. */
    private readonly raiseRx: () => void,
    /** Tell the packet scheduler this NIC has frames to send. */
    private readonly onTx: (nic: NicDevice) => void,
  ) {}

  /**
   * Guest transmit of one frame (the bytes are copied). `flags` are the descriptor's
   * `FRAME_FLAG` bits: with `TX_CSUM` the copy's IPv4 and TCP/UDP checksums are Yakima's to
   * fill. A TCP/UDP frame travels as `FRAME_CSUM.PARTIAL` and is filled by the switch only if it
   * reaches a port that reads checksums (another VM, a TAP device; the user-mode uplink does
   * not); any other frame is filled here (`fillChecksums`). Returns false when the Tx FIFO is
   * full, so NET_SEND stops and reports how many it took; a bad length or a flag that is not a
   * Tx flag is dropped, counted, and counts as taken.
   */
  transmit(frame: Uint8Array, flags = 0): boolean {
    if (frame.length < ETH_FRAME_MIN || frame.length > ETH_FRAME_MAX) {
      this.stats.txBadLength++;
      return true;
    }
    if ((flags & ~FRAME_FLAG.TX_CSUM) !== 0) {
      this.stats.txBadFlags++;
      return true;
    }
    if (this.tx.full) {
      this.stats.txFifoFull++;
      return false;
    }
    const copy = frame.slice();
    let csum = 0;
    if (flags & FRAME_FLAG.TX_CSUM) {
      if (checksumsFillable(copy)) {
        csum = FRAME_CSUM.PARTIAL;
        this.stats.txCsumFilled++;
      } else fillChecksums(copy); // an IPv4 frame of another protocol still gets its header checksum
    }
    this.tx.push(copy, csum);
    this.onTx(this);
    return true;
  }

  /**
   * The `FRAME_FLAG` bits NET_RECV reports for `frame`: `RX_CSUM_VALID` when its IPv4 and
   * TCP/UDP checksums are correct (known from the host's own computation — `known`, the frame's
   * `FRAME_CSUM` flags from the Rx FIFO — else verified here), unless it was truncated to
   * `stored` bytes.
   */
  rxFlags(frame: Uint8Array, stored: number, known = 0): number {
    if (stored !== frame.length || !checksumsValid(frame, known)) return 0;
    this.stats.rxCsumValid++;
    return FRAME_FLAG.RX_CSUM_VALID;
  }

  /** The switch delivers a frame to this VM (owned by the NIC from now on), with its `FRAME_CSUM` flags. */
  deliver(frame: Uint8Array, flags = 0): void {
    if (!this.rx.push(frame, flags)) {
      this.stats.rxFifoDrops++;
      return;
    }
    this.stats.rxFrames++;
    this.stats.rxBytes += frame.length;
    this.raiseRx();
  }
}
