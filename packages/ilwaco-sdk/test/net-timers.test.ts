/**
 * Ilwaco's network deadline list (lib/net/timer.c): timers fire in deadline order, equal
 * deadlines in arming order, a cancelled or re-armed timer fires once at its last deadline,
 * whichever end of the list arming searches from; deferrable timers (every fifth here) fire
 * with the others but never set the next deadline the VM idles until. Runs the library's own
 * functions in a VM (hostrun) and checks the output against a model.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildElf, freshDir, getHostRun, runElf } from './helpers.js';
import type { HostRun } from './helpers.js';

const hr: HostRun | string = await getHostRun();
const unavailable = typeof hr === 'string';
if (unavailable) console.warn(`net timer tests skipped: ${hr}`);

const COUNT = 300;
const STEPS = 4000;

/** Same LCG in C and here: the operations both sides replay. */
function* operations(): Generator<{ op: 'arm' | 'cancel' | 'run'; t: number; d: number }> {
  let s = 12345;
  const next = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8;
  let now = 0;
  for (let i = 0; i < STEPS; i++) {
    const r = next() % 100;
    const t = next() % COUNT;
    if (r < 70) {
      // Deadlines cluster (short retransmission-like, long TIME-WAIT-like) and repeat.
      const kind = next() % 3;
      const d = now + (kind === 0 ? next() % 50 : kind === 1 ? 30_000 + (next() % 4) : next() % 5000);
      yield { op: 'arm', t, d };
    } else if (r < 90) yield { op: 'cancel', t, d: 0 };
    else {
      now += next() % 400;
      yield { op: 'run', t: 0, d: now };
    }
  }
  yield { op: 'run', t: 0, d: 1e9 };
}

const SOURCE = String.raw`
#include <stdint.h>
#include <stdio.h>
#include "${join(import.meta.dirname, '../lib/net/net_internal.h')}"

#define COUNT ${COUNT}
#define STEPS ${STEPS}
static struct net_timer timers[COUNT];
static uint32_t s = 12345;
static uint32_t next(void) { s = s * 1103515245u + 12345u; return s >> 8; }
static void fire(void *arg) { printf("%d\n", (int)(intptr_t)arg); }

int main(void) {
    for (int i = 0; i < COUNT; i++) {
        if (i % 5 == 0) timer_init_deferrable(&timers[i], fire, (void *)(intptr_t)i);
        else timer_init(&timers[i], fire, (void *)(intptr_t)i);
    }
    uint64_t now = 0;
    for (int i = 0; i < STEPS; i++) {
        uint32_t r = next() % 100, t = next() % COUNT;
        if (r < 70) {
            uint32_t kind = next() % 3;
            uint64_t d = now + (kind == 0 ? next() % 50 : kind == 1 ? 30000 + next() % 4 : next() % 5000);
            timer_arm(&timers[t], d);
        } else if (r < 90) {
            timer_cancel(&timers[t]);
        } else {
            now += next() % 400;
            uint64_t next = timer_next_deadline();
            printf("next %ld run %lu\n", next == ILWACO_NO_DEADLINE ? -1L : (long)next, (unsigned long)now);
            timer_run_expired(now);
        }
    }
    printf("run end\n");
    timer_run_expired(1000000000u);
    return 0;
}
`;

/** The expected output: a sorted list with arming order among equal deadlines. */
function model(): string {
  const out: string[] = [];
  let list: { t: number; d: number; seq: number }[] = [];
  let seq = 0;
  for (const o of operations()) {
    if (o.op === 'arm') {
      list = list.filter((e) => e.t !== o.t);
      list.push({ t: o.t, d: o.d, seq: seq++ });
    } else if (o.op === 'cancel') list = list.filter((e) => e.t !== o.t);
    else {
      const due = list.filter((e) => e.t % 5 !== 0).map((e) => e.d);
      out.push(o.d === 1e9 ? 'run end' : `next ${due.length ? Math.min(...due) : -1} run ${o.d}`);
      // Equal deadlines: arming order within a list, the non-deferrable list first.
      list.sort((a, b) => a.d - b.d || (a.t % 5 === 0 ? 1 : 0) - (b.t % 5 === 0 ? 1 : 0) || a.seq - b.seq);
      while (list.length && list[0]!.d <= o.d) out.push(String(list.shift()!.t));
    }
  }
  return out.join('\n') + '\n';
}

describe.skipIf(unavailable)('network timers (hostrun)', () => {
  it('fire in deadline order, ties in arming order, cancelled and re-armed ones once', async () => {
    if (typeof hr === 'string') throw new Error(hr);
    const dir = await freshDir('net-timers-');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'denali.json'), JSON.stringify({ name: 'timers', sources: ['main.c'], memory: '4M' }));
    await writeFile(join(dir, 'main.c'), SOURCE);
    const { path, config } = await buildElf(dir);
    const r = await runElf(hr, path, [config.name], { memory: config.memory });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split("\n").length).toBeGreaterThan(1000);
    expect(r.stdout).toBe(model());
  }, 60_000);
});
