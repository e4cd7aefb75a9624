/**
 * Swap counters of one Yakima instance (issue 8; paper HotOS 3.2: idle VMs are swapped to disk
 * and back when a request arrives). Shared by `Yakima.swapStats()` and `denali swap-bench`.
 */
export interface SwapStats {
  /** VMs brought back from the swap area since Yakima started. */
  swapIns: number;
  /** VMs written to the swap area and freed since Yakima started. */
  swapOuts: number;
  /** Bytes read from the swap area by swap-ins. */
  bytesRead: number;
  /** Bytes written to the swap area by swap-outs. */
  bytesWritten: number;
  /** Live VMs whose memory is in host RAM now. */
  residentVms: number;
  /** Live VMs whose memory is in the swap area now. */
  swappedVms: number;
  /** Swap-outs or swap-ins that failed (the VM stayed resident; one log line each). */
  failures: number;
  /** Host bytes the live VMs hold now (guest pages resident + per-VM state). */
  residentBytes: number;
  /** The memory budget in bytes (0 when there is none). */
  memoryBudget: number;
  /** Time from the virtual interrupt that needs a swapped VM to the VM runnable again, µs. */
  swapInLatencyUs: { p50: number; p99: number };
}
