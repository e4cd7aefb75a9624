/**
 * Thrown by `Yakima.swapOut` / `Yakima.swapIn` when a VM cannot be swapped out or in: it is
 * not idle, it is not swapped, the swap area failed (disk full, I/O error, unwritable
 * directory), or this host cannot swap. The message names the VM and the reason. After a
 * failed swap-out the VM is still resident and nothing is lost.
 */
export class SwapError extends Error {
  constructor(
    message: string,
    /** A swap-in found the VM's record unreadable: its state is gone (Yakima faults the VM). */
    readonly lost = false,
  ) {
    super(message);
    this.name = 'SwapError';
  }
}
