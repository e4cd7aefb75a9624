import type { DenaliImage } from '@denali/image-format';
import { CapacityError, type AddVmOptions, type Vm, type Yakima } from '@denali/yakima';

/** Runs with at least this many VMs show a boot progress line. */
export const BOOT_PROGRESS_MIN = 16;

/** Boot work done between two visits of the event loop, in ms (Ctrl-C and early VMs' I/O stay served). */
const BOOT_SLICE_MS = 10;

/** How often a terminal progress line is redrawn, in ms. */
const REDRAW_MS = 100;

/** What `bootIncrementally` did. */
export interface BootOutcome {
  vms: Vm[];
  /** Images not booted because Yakima refused them (its heap could not hold them). */
  refused: number;
  /** True when `shouldStop` ended the boot early. */
  interrupted: boolean;
}

/**
 * Boot one VM per image on a Yakima that is already running, yielding to the event loop every
 * few milliseconds so the VMs already booted serve requests while the rest boot, and a stop
 * request (Ctrl-C) is seen within one slice. With `BOOT_PROGRESS_MIN` VMs or more, says how far
 * it got: a redrawn line on a terminal, a line at the start and the end otherwise.
 * A `CapacityError` (Yakima's admission check) ends the boot with one line on `err`; the VMs
 * booted so far keep running.
 * @param onVm called for each VM right after it boots (console wiring).
 * @throws BootError and other errors of `Yakima.addVm` other than CapacityError.
 */
export async function bootIncrementally(
  yakima: Yakima,
  images: readonly DenaliImage[],
  opts: AddVmOptions,
  shouldStop: () => boolean,
  onVm: (vm: Vm, index: number) => void,
  err: NodeJS.WriteStream = process.stderr,
): Promise<BootOutcome> {
  const vms: Vm[] = [];
  const total = images.length;
  const show = total >= BOOT_PROGRESS_MIN;
  const tty = err.isTTY === true;
  const t0 = performance.now();
  let drawn = 0;
  if (show && !tty) err.write(`denali: booting ${total} VMs\n`);
  let slice = performance.now();
  let refused = 0;
  for (let i = 0; i < total; i++) {
    if (shouldStop()) break;
    let vm: Vm;
    try {
      vm = yakima.addVm(images[i]!, opts);
    } catch (e) {
      if (!(e instanceof CapacityError)) throw e;
      refused = total - i;
      if (show && tty) err.write('\r\x1b[K');
      err.write(`denali: refusing ${refused} of ${total} VMs: ${e.message}\n`);
      break;
    }
    vms.push(vm);
    onVm(vm, i);
    const now = performance.now();
    if (show && tty && now - drawn >= REDRAW_MS) {
      drawn = now;
      err.write(`\r\x1b[Kdenali: booting VMs ${i + 1}/${total}`);
    }
    if (now - slice >= BOOT_SLICE_MS) {
      await new Promise<void>((r) => setImmediate(r));
      slice = performance.now();
    }
  }
  const interrupted = vms.length + refused < total;
  if (show) {
    if (tty) err.write('\r\x1b[K');
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    err.write(`denali: ${vms.length} of ${total} VMs booted in ${secs} s${interrupted ? ' (stopped)' : ''}\n`);
  }
  return { vms, refused, interrupted };
}
