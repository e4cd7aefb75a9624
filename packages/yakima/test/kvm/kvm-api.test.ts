import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ioc,
  KVM,
  KVM_CPUID2_SIZE,
  KVM_CPUID_ENTRY2,
  KVM_CPUID_ENTRY2_SIZE,
  KVM_DTABLE,
  KVM_DTABLE_SIZE,
  KVM_EXIT,
  KVM_FPU_SIZE,
  KVM_MEMORY_REGION,
  KVM_REGS,
  KVM_REGS_SIZE,
  KVM_RUN,
  KVM_RUN_SIZE,
  KVM_SEGMENT,
  KVM_SEGMENT_SIZE,
  KVM_SREGS,
  KVM_SREGS_SIZE,
  KVM_USERSPACE_MEMORY_REGION_SIZE,
} from '../../src/cpu/kvm/kvm-api.js';
import { buildDiagPage, DIAG_BASE, DIAG_IDT, DIAG_STUBS } from '../../src/cpu/kvm/diag.js';

describe('KVM API numbers and struct layouts (documented x86-64 ABI)', () => {
  it('struct sizes', () => {
    expect(KVM_REGS_SIZE).toBe(144);
    expect(KVM_SEGMENT_SIZE).toBe(24);
    expect(KVM_DTABLE_SIZE).toBe(16);
    expect(KVM_SREGS_SIZE).toBe(312);
    expect(KVM_FPU_SIZE).toBe(416);
    expect(KVM_USERSPACE_MEMORY_REGION_SIZE).toBe(32);
    expect(KVM_CPUID2_SIZE).toBe(8);
    expect(KVM_CPUID_ENTRY2_SIZE).toBe(40);
    expect(KVM_RUN_SIZE).toBe(2352);
  });

  it('field offsets', () => {
    expect([KVM_REGS.RIP, KVM_REGS.RFLAGS, KVM_REGS.RSP]).toEqual([128, 136, 48]);
    expect([KVM_SREGS.CS, KVM_SREGS.SS, KVM_SREGS.TR, KVM_SREGS.GDT, KVM_SREGS.IDT, KVM_SREGS.CR0, KVM_SREGS.CR4, KVM_SREGS.EFER]).toEqual([
      0, 120, 144, 192, 208, 224, 248, 264,
    ]);
    expect([KVM_SEGMENT.LIMIT, KVM_SEGMENT.SELECTOR, KVM_SEGMENT.TYPE, KVM_SEGMENT.G, KVM_SEGMENT.UNUSABLE]).toEqual([8, 12, 14, 20, 22]);
    expect(KVM_DTABLE.LIMIT).toBe(8);
    expect([KVM_RUN.IMMEDIATE_EXIT, KVM_RUN.EXIT_REASON, KVM_RUN.IO_DIRECTION, KVM_RUN.IO_PORT, KVM_RUN.IO_DATA_OFFSET]).toEqual([1, 8, 32, 34, 40]);
    expect([KVM_RUN.MMIO_PHYS_ADDR, KVM_RUN.MMIO_LEN, KVM_RUN.MMIO_IS_WRITE, KVM_RUN.KVM_VALID_REGS, KVM_RUN.SYNC_REGS]).toEqual([32, 48, 52, 288, 304]);
    expect([KVM_MEMORY_REGION.FLAGS, KVM_MEMORY_REGION.GUEST_PHYS_ADDR, KVM_MEMORY_REGION.USERSPACE_ADDR]).toEqual([4, 8, 24]);
    expect([KVM_CPUID_ENTRY2.INDEX, KVM_CPUID_ENTRY2.EAX, KVM_CPUID_ENTRY2.EDX]).toEqual([4, 12, 24]);
  });

  it('ioctl request numbers', () => {
    expect(ioc(3, 0xae, 0x05, 8) >>> 0).toBe(0xc008ae05);
    expect(KVM).toEqual({
      GET_API_VERSION: 0xae00,
      CREATE_VM: 0xae01,
      CHECK_EXTENSION: 0xae03,
      GET_VCPU_MMAP_SIZE: 0xae04,
      GET_SUPPORTED_CPUID: 0xc008ae05,
      CREATE_VCPU: 0xae41,
      SET_USER_MEMORY_REGION: 0x4020ae46,
      SET_TSS_ADDR: 0xae47,
      SET_IDENTITY_MAP_ADDR: 0x4008ae48,
      RUN: 0xae80,
      GET_REGS: 0x8090ae81,
      SET_REGS: 0x4090ae82,
      GET_SREGS: 0x8138ae83,
      SET_SREGS: 0x4138ae84,
      SET_SIGNAL_MASK: 0x4004ae8b,
      GET_FPU: 0x81a0ae8c,
      SET_FPU: 0x41a0ae8d,
      SET_CPUID2: 0x4008ae90,
    });
    expect([KVM_EXIT.IO, KVM_EXIT.HLT, KVM_EXIT.MMIO, KVM_EXIT.SHUTDOWN, KVM_EXIT.FAIL_ENTRY, KVM_EXIT.INTR, KVM_EXIT.INTERNAL_ERROR]).toEqual([
      2, 5, 6, 8, 9, 10, 17,
    ]);
  });

  const haveCompiler = existsSync('/usr/include/linux/kvm.h') && hasGcc();
  it.skipIf(!haveCompiler)('agrees with <linux/kvm.h> (compiled C program)', () => {
    const checks: [string, number][] = [
      ['sizeof(struct kvm_regs)', KVM_REGS_SIZE],
      ['sizeof(struct kvm_sregs)', KVM_SREGS_SIZE],
      ['sizeof(struct kvm_segment)', KVM_SEGMENT_SIZE],
      ['sizeof(struct kvm_fpu)', KVM_FPU_SIZE],
      ['sizeof(struct kvm_userspace_memory_region)', KVM_USERSPACE_MEMORY_REGION_SIZE],
      ['sizeof(struct kvm_cpuid_entry2)', KVM_CPUID_ENTRY2_SIZE],
      ['offsetof(struct kvm_regs, rip)', KVM_REGS.RIP],
      ['offsetof(struct kvm_sregs, tr)', KVM_SREGS.TR],
      ['offsetof(struct kvm_sregs, idt)', KVM_SREGS.IDT],
      ['offsetof(struct kvm_sregs, cr4)', KVM_SREGS.CR4],
      ['offsetof(struct kvm_sregs, efer)', KVM_SREGS.EFER],
      ['offsetof(struct kvm_segment, unusable)', KVM_SEGMENT.UNUSABLE],
      ['offsetof(struct kvm_run, immediate_exit)', KVM_RUN.IMMEDIATE_EXIT],
      ['offsetof(struct kvm_run, exit_reason)', KVM_RUN.EXIT_REASON],
      ['offsetof(struct kvm_run, io.port)', KVM_RUN.IO_PORT],
      ['offsetof(struct kvm_run, io.data_offset)', KVM_RUN.IO_DATA_OFFSET],
      ['offsetof(struct kvm_run, mmio.len)', KVM_RUN.MMIO_LEN],
      ['offsetof(struct kvm_run, mmio.is_write)', KVM_RUN.MMIO_IS_WRITE],
      ['offsetof(struct kvm_run, internal.data)', KVM_RUN.INTERNAL_DATA],
      ['offsetof(struct kvm_run, kvm_valid_regs)', KVM_RUN.KVM_VALID_REGS],
      ['offsetof(struct kvm_run, kvm_dirty_regs)', KVM_RUN.KVM_DIRTY_REGS],
      ['offsetof(struct kvm_run, s)', KVM_RUN.SYNC_REGS],
      ['KVM_RUN', KVM.RUN],
      ['KVM_GET_SREGS', KVM.GET_SREGS],
      ['KVM_SET_USER_MEMORY_REGION', KVM.SET_USER_MEMORY_REGION],
      ['KVM_SET_SIGNAL_MASK', KVM.SET_SIGNAL_MASK],
      ['KVM_SET_CPUID2', KVM.SET_CPUID2],
      ['KVM_GET_SUPPORTED_CPUID', KVM.GET_SUPPORTED_CPUID],
      ['KVM_EXIT_INTERNAL_ERROR', KVM_EXIT.INTERNAL_ERROR],
    ];
    const dir = mkdtempSync(join(tmpdir(), 'kvm-abi-'));
    try {
      const src = [
        '#include <stdio.h>',
        '#include <stddef.h>',
        '#include <linux/kvm.h>',
        'int main(void) {',
        ...checks.map(([expr]) => `  printf("%lu\\n", (unsigned long)(${expr}));`),
        '  return 0;',
        '}',
      ].join('\n');
      writeFileSync(join(dir, 'abi.c'), src);
      execFileSync('gcc', ['-o', join(dir, 'abi'), join(dir, 'abi.c')]);
      const got = execFileSync(join(dir, 'abi'), { encoding: 'utf8' }).trim().split('\n').map(Number);
      expect(Object.fromEntries(checks.map(([e], i) => [e, got[i]]))).toEqual(Object.fromEntries(checks.map(([e, v]) => [e, v])));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  if (!haveCompiler) console.log('C cross-check of the KVM structs skipped: gcc or /usr/include/linux/kvm.h missing');
});

describe('diagnostic page', () => {
  it('has an interrupt gate per exception vector pointing at its stub, and flat GDT descriptors', () => {
    const page = buildDiagPage();
    const dv = new DataView(page.buffer);
    for (let v = 0; v < 32; v++) {
      const lo = dv.getUint32(DIAG_IDT - DIAG_BASE + v * 8, true);
      const hi = dv.getUint32(DIAG_IDT - DIAG_BASE + v * 8 + 4, true);
      expect(((hi & 0xffff0000) | (lo & 0xffff)) >>> 0).toBe(DIAG_STUBS + v * 16);
      expect(lo >>> 16).toBe(0x08);
      expect(hi & 0xffff).toBe(0x8e00);
      expect(page[DIAG_STUBS - DIAG_BASE + v * 16 + 1]).toBe(v); // mov eax, v
    }
    expect(dv.getBigUint64(0x108, true)).toBe(0x00cf9b000000ffffn);
    expect(dv.getBigUint64(0x110, true)).toBe(0x00cf93000000ffffn);
  });
});

function hasGcc(): boolean {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
