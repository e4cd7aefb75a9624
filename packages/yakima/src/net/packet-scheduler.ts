import type { NicDevice } from './nic.js';

/**
 * The packet scheduler (paper 3.2): moves frames from VMs' Tx FIFOs into the switch,
 * one frame per NIC per round, round-robin, so a VM that floods cannot starve the others'
 * transmissions. (Fair queueing by bytes is future work, as in the paper's 3.4.)
 */
export class PacketScheduler {
  private readonly active: NicDevice[] = [];
  private readonly queued = new Set<NicDevice>();

  /** `send` gets each frame with its `FRAME_CSUM` flags. */
  constructor(private readonly send: (nic: NicDevice, frame: Uint8Array, flags: number) => void) {}

  /** A NIC has frames waiting. */
  ready(nic: NicDevice): void {
    if (this.queued.has(nic)) return;
    this.queued.add(nic);
    this.active.push(nic);
  }

  /** True when some Tx FIFO holds frames. */
  get pending(): boolean {
    return this.active.length > 0;
  }

  /** Move up to `budget` frames into the switch; returns how many moved. */
  pump(budget = 4096): number {
    let moved = 0;
    while (moved < budget && this.active.length > 0) {
      const nic = this.active.shift()!;
      const flags = nic.tx.headFlags();
      const frame = nic.tx.shift();
      if (frame) {
        nic.stats.txFrames++;
        nic.stats.txBytes += frame.length;
        this.send(nic, frame, flags);
        moved++;
      }
      if (nic.tx.length > 0) this.active.push(nic);
      else this.queued.delete(nic);
    }
    return moved;
  }
}
