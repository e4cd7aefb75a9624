import type { PolledPort } from '../network.js';
import type { SwitchPort } from '../switch.js';
import { consumeOnBell, FrameRing } from './frame-ring.js';
import type { RelayRings } from './relay-protocol.js';

/**
 * The main thread's half of the user-mode uplink: a switch port with the virtual host's MAC
 * that moves frames between the switch and the relay worker through the two shared rings.
 * Frames the switch delivers go into the ring to the worker, which is rung once per batch (at
 * the next `poll` or microtask, and only when it sleeps). Frames from the worker enter the switch
 * on each `poll` (Yakima's run loop, `VirtualNetwork.pump`) and, while nobody polls, when the
 * worker rings (`Atomics.waitAsync`): a frame to an idle VM then raises its NET_RX interrupt,
 * which wakes Yakima's scheduler.
 */
export class RelayPort implements SwitchPort, PolledPort {
  /** Frames keep their `FRAME_CSUM.PARTIAL` mark: the worker's TCP stack trusts Yakima's frames. */
  readonly partialChecksums = true;
  readonly toWorker: FrameRing;
  readonly toMain: FrameRing;
  private polled = false;
  private ringQueued = false;
  private readonly stopConsuming: () => void;
  private readonly ringWorker = (): void => {
    this.ringQueued = false;
    this.toWorker.wakeConsumer();
  };
  private readonly enter = (frame: Uint8Array, flags: number): void => {
    this.forward(this, frame, flags);
  };

  /**
   * @param forward the switch's `forward` (frames from the worker enter it from this port).
   */
  constructor(
    readonly name: string,
    readonly mac: Uint8Array,
    rings: RelayRings,
    private readonly forward: (from: SwitchPort, frame: Uint8Array, flags: number) => unknown,
  ) {
    this.toWorker = new FrameRing(rings.sab, rings.toWorker.offset, rings.toWorker.capacity);
    this.toMain = new FrameRing(rings.sab, rings.toMain.offset, rings.toMain.capacity);
    this.stopConsuming = consumeOnBell(
      this.toMain,
      this.enter,
      () => {
        if (this.ringQueued) this.ringWorker();
      },
      () => this.polled,
    );
  }

  /** Take a frame from the switch: into the ring to the worker (a full ring drops it, counted there). */
  deliver(frame: Uint8Array, flags = 0): void {
    this.toWorker.push(frame, flags);
    if (!this.ringQueued) {
      this.ringQueued = true;
      queueMicrotask(this.ringWorker);
    }
  }

  poll(): number {
    if (this.ringQueued) this.ringWorker();
    return this.toMain.drain(this.enter);
  }

  setPolled(polled: boolean): void {
    this.polled = polled;
    if (polled) this.toMain.awake();
    else {
      this.toMain.sleep();
      this.poll(); // frames pushed before the worker could see the flag
    }
  }

  /** Stop waiting for the worker (its pending wait settles). */
  stop(): void {
    this.stopConsuming();
  }
}
