/**
 * Raised by `Yakima.pauseVm` / `resumeVm` / `stopVm` when the VM is not in a state the
 * operation applies to (e.g. resuming a VM that is not paused, stopping one that has exited).
 * The control API answers it with 409 Conflict.
 */
export class VmStateError extends Error {
  override readonly name = 'VmStateError';
}
