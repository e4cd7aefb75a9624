/**
 * Raised by `Yakima.swapOut` / `Yakima.swapIn` when a VM cannot be swapped (no swap support,
 * wrong state, I/O failure). The message says why in one line; the control API answers it
 * with a 409/501 JSON error.
 */
export class SwapError extends Error {
  override readonly name = 'SwapError';
}
