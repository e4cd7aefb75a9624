import {
  CONSOLE_ARGS,
  EXIT_ARGS,
  HYPERCALL,
  HYPERCALL_PORT_BASE,
  HYPERCALL_PORT_COUNT,
  IDLE_ARGS,
  IDLE_FOREVER,
  ETH_FRAME_MAX,
  ETH_FRAME_MIN,
  FRAME_DESC,
  FRAME_FLAG,
  NET_ARGS,
  NET_MAX_BATCH,
} from '@denali/image-format';
import { GuestMemoryError } from '../boot/guest-memory.js';
import type { Vm } from './vm.js';

/** A hypercall the guest got wrong (unknown number, bad port or size, bad pointer): faults that VM only. */
export class HypercallFault extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HypercallFault';
  }
}

/** What the scheduler does after a hypercall. */
export type HypercallOutcome =
  | { action: 'continue' }
  /** Sleep until an interrupt or `timeoutTicks` ticks from now (`Infinity`: no timeout). */
  | { action: 'idle'; timeoutTicks: number }
  /**
   * A device has no room (the console buffer is full): park the VM until the device wakes it,
   * then repeat the hypercall — the scheduler moves EIP back onto its `out` instruction, so
   * the guest sees a write that simply took longer (like a blocking write(2)).
   */
  | { action: 'wait' }
  | { action: 'exit'; status: number };

type Handler = (vm: Vm, args: number) => HypercallOutcome;

const CONTINUE: HypercallOutcome = { action: 'continue' };
const WAIT: HypercallOutcome = { action: 'wait' };

/** Host cost of one hypercall's dispatch, charged to the VM's quantum, in instruction-equivalents. */
export const HYPERCALL_COST = 64;

/** Largest console write handled in one hypercall, in bytes; longer writes report a short count. */
export const CONSOLE_WRITE_MAX = 1 << 20;

const handlers: ReadonlyMap<number, Handler> = new Map<number, Handler>([
  [HYPERCALL.EXIT, (vm, a) => ({ action: 'exit', status: vm.memory.readU32(a + EXIT_ARGS.STATUS) | 0 })],
  [
    HYPERCALL.IDLE,
    (vm, a) => {
      const lo = vm.memory.readU32(a + IDLE_ARGS.TIMEOUT_LO);
      const hi = vm.memory.readU32(a + IDLE_ARGS.TIMEOUT_HI);
      // Paper 3.1.1: idle returns at once when a virtual interrupt is already pending.
      if (vm.pendingIrqs !== 0 || vm.guestPending !== 0) return CONTINUE;
      const timeoutTicks = lo === IDLE_FOREVER && hi === IDLE_FOREVER ? Infinity : hi * 0x1_0000_0000 + lo;
      return { action: 'idle', timeoutTicks };
    },
  ],
  [
    HYPERCALL.CONSOLE_WRITE,
    (vm, a) => {
      const buf = vm.memory.readU32(a + CONSOLE_ARGS.BUF);
      const len = Math.min(vm.memory.readU32(a + CONSOLE_ARGS.LEN), CONSOLE_WRITE_MAX);
      vm.memory.writeU32(a + CONSOLE_ARGS.DONE, 0); // checks the out-field before any effect
      // The console buffer takes what it has room for (a partial write, DONE < LEN, which
      // the guest continues); with no room at all the VM waits for the host to drain it.
      const done = vm.console.write(vm.memory.view(buf, len));
      if (done === 0 && len > 0) {
        vm.stats.consoleWaits++;
        return WAIT;
      }
      vm.memory.writeU32(a + CONSOLE_ARGS.DONE, done);
      vm.stats.consoleBytes += done;
      vm.chargeBytes(done);
      return CONTINUE;
    },
  ],
  [
    HYPERCALL.CONSOLE_READ,
    (vm, a) => {
      const buf = vm.memory.readU32(a + CONSOLE_ARGS.BUF);
      const len = vm.memory.readU32(a + CONSOLE_ARGS.LEN);
      vm.memory.writeU32(a + CONSOLE_ARGS.DONE, 0);
      vm.memory.writeU32(a + CONSOLE_ARGS.EOF, 0);
      const { done, eof } = vm.console.read(vm.memory.writableView(buf, len));
      vm.memory.writeU32(a + CONSOLE_ARGS.DONE, done);
      vm.memory.writeU32(a + CONSOLE_ARGS.EOF, eof ? 1 : 0);
      return CONTINUE;
    },
  ],
  [
    HYPERCALL.NET_SEND,
    (vm, a) => {
      const nic = vm.nic;
      if (!nic) return noNic(vm, a, 'NET_SEND');
      const { descs, count } = netBlock(vm, a);
      let done = 0;
      for (; done < count; done++) {
        const d = descs + done * FRAME_DESC.SIZE;
        // LEN (u16) and FLAGS (u16) read as one u32: an old guest's u32 LEN has FLAGS 0.
        const lenFlags = vm.memory.readU32(d + FRAME_DESC.LEN);
        const len = lenFlags & 0xffff;
        if (len < ETH_FRAME_MIN || len > ETH_FRAME_MAX) {
          nic.stats.txBadLength++; // dropped and counted, never a fault: the pointer was not used
          continue;
        }
        if (!nic.transmit(vm.memory.view(vm.memory.readU32(d + FRAME_DESC.ADDR), len), lenFlags >>> 16)) break;
        vm.chargeBytes(len);
      }
      vm.memory.writeU32(a + NET_ARGS.DONE, done);
      return CONTINUE;
    },
  ],
  [
    HYPERCALL.NET_RECV,
    (vm, a) => {
      const nic = vm.nic;
      if (!nic) throw new HypercallFault('NET_RECV: this VM has no network interface');
      const { descs, count } = netBlock(vm, a);
      let done = 0;
      for (; done < count && nic.rx.length > 0; done++) {
        const d = descs + done * FRAME_DESC.SIZE;
        // Without RX_FLAGS (bit 31 of the u32, which no valid old capacity sets) LEN is the old u32.
        const lenFlags = vm.memory.readU32(d + FRAME_DESC.LEN);
        const wantsFlags = (lenFlags >>> 16) & FRAME_FLAG.RX_FLAGS;
        const cap = wantsFlags ? lenFlags & 0xffff : lenFlags;
        const buf = vm.memory.writableView(vm.memory.readU32(d + FRAME_DESC.ADDR), cap);
        vm.memory.writeU32(d + FRAME_DESC.LEN, 0); // checks the out-field before a frame leaves the FIFO
        const known = nic.rx.headFlags();
        const frame = nic.rx.shift()!;
        const n = Math.min(cap, frame.length);
        buf.set(frame.subarray(0, n));
        vm.memory.writeU32(d + FRAME_DESC.LEN, wantsFlags ? (n | (nic.rxFlags(frame, n, known) << 16)) >>> 0 : n);
        vm.chargeBytes(n);
      }
      vm.memory.writeU32(a + NET_ARGS.DONE, done);
      return CONTINUE;
    },
  ],
]);

/**
 * NET_SEND on a VM without a NIC: an empty batch is the guest's library OS saying "a program
 * wanted the network" (Ilwaco sends it when `socket()` finds no interface), so the host can
 * hint at networking options; it completes with DONE = 0. Frames are a guest error (fault).
 */
function noNic(vm: Vm, a: number, what: string): HypercallOutcome {
  const count = vm.memory.readU32(a + NET_ARGS.COUNT);
  if (count !== 0) throw new HypercallFault(`${what}: this VM has no network interface`);
  vm.memory.writeU32(a + NET_ARGS.DONE, 0);
  vm.stats.netWithoutNic++;
  return CONTINUE;
}

/** Read and check a NET_SEND/NET_RECV block: the descriptor array must lie in guest memory. */
function netBlock(vm: Vm, a: number): { descs: number; count: number } {
  const descs = vm.memory.readU32(a + NET_ARGS.DESCS);
  const count = vm.memory.readU32(a + NET_ARGS.COUNT);
  vm.memory.writeU32(a + NET_ARGS.DONE, 0);
  if (count > NET_MAX_BATCH) throw new HypercallFault(`network batch of ${count} frames exceeds ${NET_MAX_BATCH}`);
  vm.memory.view(descs, count * FRAME_DESC.SIZE);
  return { descs, count };
}

/**
 * Dispatch a virtual instruction: `out dx, eax` with `dx = HYPERCALL_PORT_BASE + n` and
 * `eax` = guest address of the argument block (paper 3.1; transport as in Solo5 hvt).
 * Shared by every CPU backend. Every pointer and length in the block is checked against the
 * VM's memory.
 *
 * @param port the I/O port the guest wrote; `value` the 32-bit eax; `size` the access size in bytes.
 * @throws HypercallFault for a port outside the hypercall range, a non-32-bit access, an
 *   unknown hypercall number, or a pointer or length outside the guest's memory.
 */
export function dispatchHypercall(vm: Vm, port: number, value: number, size: number): HypercallOutcome {
  const n = port - HYPERCALL_PORT_BASE;
  if (n < 0 || n >= HYPERCALL_PORT_COUNT) {
    throw new HypercallFault(`out to port 0x${port.toString(16)} is not a Denali device (deprecated I/O instruction)`);
  }
  if (size !== 4) throw new HypercallFault(`hypercall ${n} must be a 32-bit out, got a ${size * 8}-bit one`);
  const handler = handlers.get(n);
  if (!handler) throw new HypercallFault(`unknown hypercall ${n}`);
  vm.stats.hypercalls++;
  vm.charged += HYPERCALL_COST;
  try {
    return handler(vm, value >>> 0);
  } catch (e) {
    if (e instanceof GuestMemoryError) throw new HypercallFault(`hypercall ${n}: ${e.message}`);
    throw e;
  }
}
