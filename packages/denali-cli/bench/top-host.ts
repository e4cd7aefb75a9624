// A Yakima instance with N VMs for `pnpm bench:top` (run by top.ts): scripted vCPUs that idle
// with a 1 s timeout and, on every 10th VM, spin a few quanta on waking, so counters move the
// way a host of mostly idle services moves. Listens on the control socket `bench-top`.
import { HYPERCALL, HYPERCALL_PORT_BASE } from '@denali/image-format';
import { ConsoleTailSink, startControlServer, Yakima } from '@denali/yakima';
import { ScriptedVcpu, tinyImage } from '../../yakima/test/scripted-vcpu.js';

const n = Number(process.argv[2] ?? 10_000);
const ARGS = 0x3000;
let id = 0;
const tail = new ConsoleTailSink(undefined);
const yakima = new Yakima({
  keepAlive: true,
  quantumInstructions: 10_000,
  sink: tail,
  createVcpu: (mem) => {
    const busy = id++ % 10 === 0;
    let spins = 0;
    return new ScriptedVcpu(mem, (cpu, max) => {
      if (busy && spins++ % 4 !== 3) {
        cpu.instructionsRetired += max;
        return { kind: 'quantum' };
      }
      cpu.instructionsRetired += 50;
      mem.writeU32(ARGS, 1_000_000); // idle 1 s (ticks are µs)
      mem.writeU32(ARGS + 4, 0);
      return { kind: 'io-out', port: HYPERCALL_PORT_BASE + HYPERCALL.IDLE, value: ARGS, size: 4 };
    });
  },
});
const image = tinyImage('svc', 2 << 20);
for (let i = 0; i < n; i++) yakima.addVm(image);
const server = await startControlServer(yakima, { name: 'bench-top', tail, backend: 'emu', version: 'bench' });
process.stdout.write(`ready ${n}\n`);
process.on('SIGTERM', () => yakima.stop());
await yakima.run();
await server.close();
process.exit(0);
