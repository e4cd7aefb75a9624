/*
 * hostrun: run an Ilwaco ELF natively on an x86-64 Linux host, for testing the SDK before
 * (and independently of) the Yakima emulator. A 32-bit stub process (loader.S) is traced with
 * ptrace; guest memory is mapped at the guest-physical addresses of the Denali layout, the
 * read-only virtual registers and boot arguments are filled in as Yakima does, and the
 * guest's `outl %eax,%dx` hypercalls and `hlt` (which fault in user mode) are emulated:
 * EXIT, IDLE (ppoll on stdin with the timeout), CONSOLE_WRITE (stdout), CONSOLE_READ
 * (non-blocking stdin). CLOCK/WALLCLOCK are refreshed and interrupts delivered (upcall frame
 * as in abi.ts) on every re-entry. Segment permissions are not enforced (memory is RWX).
 *
 * With --quantum US, a timer stops the guest every US microseconds of wall time (a "quantum"
 * exit, as Yakima's scheduler does), so that CLOCK advances during computation and upcalls
 * are delivered at arbitrary instructions, not just after hypercalls.
 *
 * usage: hostrun LOADER ELF [--mem BYTES] [--stack BYTES] [--quantum US] [--stats] [--] NAME [ARGS...]
 *        hostrun LOADER --probe   (exit 0 if this machine lets us trace and map a 32-bit stub)
 * Exit status: the guest's EXIT status (low 8 bits); 0 after hlt; 139 on a fault; 2 on usage
 * errors. With --stats, prints "hostrun: ..." counters to stderr at the end.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/time.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../include/denali/abi.h"

#define LOADER_DO_SYSCALL 0x70000001u

static pid_t child;
static int memfd;
static struct timespec boot;
static int stdin_eof;
/* Console interrupts are edge-like: raised once when input becomes readable, re-armed by a read. */
static int console_signalled;
static unsigned long n_hypercalls, n_idle, n_upcalls, n_quanta;
static volatile sig_atomic_t timer_armed;

static void on_alarm(int sig) {
    (void)sig;
    if (timer_armed) kill(child, SIGUSR1);
}
static uint64_t idle_us;

static void die(const char *msg) {
    fprintf(stderr, "hostrun: %s: %s\n", msg, strerror(errno));
    if (child > 0) kill(child, SIGKILL);
    exit(2);
}

static void mem_write(uint32_t addr, const void *p, size_t n) {
    if (pwrite(memfd, p, n, addr) != (ssize_t)n) die("write guest memory");
}
static void mem_read(uint32_t addr, void *p, size_t n) {
    if (pread(memfd, p, n, addr) != (ssize_t)n) die("read guest memory");
}
static uint32_t rd32(uint32_t addr) {
    uint32_t v;
    mem_read(addr, &v, 4);
    return v;
}
static void wr32(uint32_t addr, uint32_t v) { mem_write(addr, &v, 4); }

static int wait_stop(void) {
    int st;
    if (waitpid(child, &st, 0) < 0) die("waitpid");
    if (WIFEXITED(st)) {
        fprintf(stderr, "hostrun: stub exited with %d\n", WEXITSTATUS(st));
        exit(2);
    }
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "hostrun: stub killed by signal %d\n", WTERMSIG(st));
        exit(2);
    }
    return WSTOPSIG(st);
}

static uint32_t stub_syscall(uint32_t nr, uint32_t a, uint32_t b, uint32_t c, uint32_t d, uint32_t e, uint32_t f) {
    struct user_regs_struct r;
    if (ptrace(PTRACE_GETREGS, child, 0, &r) < 0) die("getregs");
    r.rax = nr;
    r.rbx = a;
    r.rcx = b;
    r.rdx = c;
    r.rsi = d;
    r.rdi = e;
    r.rbp = f;
    r.rip = LOADER_DO_SYSCALL;
    if (ptrace(PTRACE_SETREGS, child, 0, &r) < 0) die("setregs");
    if (ptrace(PTRACE_CONT, child, 0, 0) < 0) die("cont");
    if (wait_stop() != SIGTRAP) {
        fprintf(stderr, "hostrun: stub syscall %u did not trap\n", nr);
        exit(2);
    }
    if (ptrace(PTRACE_GETREGS, child, 0, &r) < 0) die("getregs");
    return (uint32_t)r.rax;
}

static uint64_t now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)(t.tv_sec - boot.tv_sec) * 1000000u + (uint64_t)((t.tv_nsec - boot.tv_nsec) / 1000);
}

static void update_clocks(void) {
    uint64_t c = now_us();
    struct timeval tv;
    gettimeofday(&tv, NULL);
    uint64_t w = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
    mem_write(DENALI_VREG_RW_BASE + DENALI_VREG_RW_CLOCK, &c, 8);
    mem_write(DENALI_VREG_RW_BASE + DENALI_VREG_RW_WALLCLOCK, &w, 8);
}

static void raise_irq(uint32_t bits) {
    uint32_t a = DENALI_VREG_RW_BASE + DENALI_VREG_RW_PENDING;
    wr32(a, rd32(a) | bits);
}

static int stdin_ready(int timeout_ms_or_neg, const struct timespec *ts) {
    if (stdin_eof || console_signalled) {
        if (ts) nanosleep(ts, NULL);
        return 0;
    }
    struct pollfd p = {0, POLLIN, 0};
    int r = ts ? ppoll(&p, 1, ts, NULL) : poll(&p, 1, timeout_ms_or_neg);
    if (r > 0 && (p.revents & (POLLIN | POLLHUP))) {
        console_signalled = 1;
        return 1;
    }
    return 0;
}

static void finish(int status) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    fflush(stdout);
    exit(status);
}

static int stats;
static void print_stats(void) {
    if (stats)
        fprintf(stderr, "hostrun: hypercalls=%lu idle_calls=%lu idle_us=%llu upcalls=%lu quanta=%lu wall_us=%llu\n", n_hypercalls,
                n_idle, (unsigned long long)idle_us, n_upcalls, n_quanta, (unsigned long long)now_us());
}

static int hypercall(uint32_t nr, uint32_t block) {
    n_hypercalls++;
    switch (nr) {
    case DENALI_HYPERCALL_EXIT:
        fflush(stdout);
        print_stats();
        finish((int)(rd32(block) & 0xff));
        return 0;
    case DENALI_HYPERCALL_IDLE: {
        n_idle++;
        uint32_t lo = rd32(block), hi = rd32(block + 4);
        if (rd32(DENALI_VREG_RW_BASE + DENALI_VREG_RW_PENDING)) return 0;
        uint64_t t0 = now_us();
        if (lo == DENALI_IDLE_FOREVER && hi == DENALI_IDLE_FOREVER) {
            if (stdin_eof || console_signalled) {
                fprintf(stderr, "hostrun: guest idles forever with no input left\n");
                print_stats();
                finish(3);
            }
            stdin_ready(-1, NULL);
            raise_irq(DENALI_IRQ_CONSOLE);
        } else {
            uint64_t us = ((uint64_t)hi << 32) | lo;
            uint64_t deadline = t0 + us;
            int input = 0;
            for (uint64_t now = t0; now < deadline && !input; now = now_us()) {
                uint64_t left = deadline - now;
                struct timespec ts = {(time_t)(left / 1000000u), (long)(left % 1000000u) * 1000};
                input = stdin_ready(0, &ts); /* may return early when our timer interrupts it */
            }
            raise_irq(input ? DENALI_IRQ_CONSOLE : DENALI_IRQ_TIMER);
        }
        idle_us += now_us() - t0;
        return 0;
    }
    case DENALI_HYPERCALL_CONSOLE_WRITE: {
        uint32_t buf = rd32(block), len = rd32(block + 4);
        char tmp[4096];
        uint32_t done = 0;
        while (done < len) {
            uint32_t k = len - done < sizeof tmp ? len - done : (uint32_t)sizeof tmp;
            mem_read(buf + done, tmp, k);
            fwrite(tmp, 1, k, stdout);
            done += k;
        }
        fflush(stdout);
        wr32(block + 8, len);
        return 0;
    }
    case DENALI_HYPERCALL_CONSOLE_READ: {
        uint32_t buf = rd32(block), len = rd32(block + 4);
        uint32_t done = 0, eof = stdin_eof;
        console_signalled = 0;
        if (!stdin_eof && len > 0 && stdin_ready(0, NULL)) {
            console_signalled = 0;
            char tmp[4096];
            ssize_t n = read(0, tmp, len < sizeof tmp ? len : sizeof tmp);
            if (n <= 0) {
                stdin_eof = 1;
                eof = 1;
            } else {
                mem_write(buf, tmp, (size_t)n);
                done = (uint32_t)n;
            }
        }
        wr32(block + 8, done);
        wr32(block + 12, eof);
        return 0;
    }
    case DENALI_HYPERCALL_NET_SEND:
        /* No NIC here, as in Yakima without networking: an empty batch is Ilwaco saying a
         * program wanted the network (DONE = 0); frames are a guest error. */
        if (rd32(block + DENALI_NET_ARGS_COUNT) != 0) {
            fprintf(stderr, "hostrun: NET_SEND: no network interface\n");
            return -1;
        }
        wr32(block + DENALI_NET_ARGS_DONE, 0);
        return 0;
    default:
        fprintf(stderr, "hostrun: bad hypercall %u\n", nr);
        return -1;
    }
}

int main(int argc, char **argv) {
    int probe = argc == 3 && !strcmp(argv[2], "--probe");
    if (argc < 4 && !probe) {
        fprintf(stderr, "usage: hostrun LOADER ELF [--mem BYTES] [--stack BYTES] [--stats] [--] NAME [ARGS...]\n");
        return 2;
    }
    const char *loader = argv[1], *elfpath = argv[2];
    uint32_t memsize = 16u << 20, stacksize = DENALI_DEFAULT_STACK_SIZE, quantum_us = 0;
    int i = 3;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--mem") && i + 1 < argc) memsize = (uint32_t)strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--stack") && i + 1 < argc) stacksize = (uint32_t)strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--quantum") && i + 1 < argc) quantum_us = (uint32_t)strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--stats")) stats = 1;
        else if (!strcmp(argv[i], "--")) {
            i++;
            break;
        } else break;
    }
    if (i >= argc && !probe) {
        fprintf(stderr, "hostrun: missing NAME\n");
        return 2;
    }
    static unsigned char elf[64 << 20];
    size_t elflen = 0;
    Elf32_Ehdr *eh = (Elf32_Ehdr *)elf;
    if (!probe) {
    /* Read the ELF. */
    FILE *f = fopen(elfpath, "rb");
    if (!f) die(elfpath);
    elflen = fread(elf, 1, sizeof elf, f);
    fclose(f);
    if (elflen < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS32) {
        fprintf(stderr, "hostrun: %s is not ELF32\n", elfpath);
        return 2;
    }
    }

    clock_gettime(CLOCK_MONOTONIC, &boot);
    child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        execl(loader, loader, (char *)NULL);
        _exit(127);
    }
    if (wait_stop() != SIGTRAP) die("exec stop");
    ptrace(PTRACE_SETOPTIONS, child, 0, PTRACE_O_EXITKILL);
    if (ptrace(PTRACE_CONT, child, 0, 0) < 0) die("cont");
    if (wait_stop() != SIGTRAP) die("stub ready");

    /* mmap2(addr, len, prot, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0) = syscall 192 */
    const uint32_t flags = 0x02 | 0x20 | 0x10;
    if (stub_syscall(192, DENALI_VREG_RO_BASE, 0x1000, 1, flags, (uint32_t)-1, 0) != DENALI_VREG_RO_BASE) die("map ro vregs");
    if (stub_syscall(192, DENALI_VREG_RW_BASE, 0x1000, 3, flags, (uint32_t)-1, 0) != DENALI_VREG_RW_BASE) die("map rw vregs");
    if (stub_syscall(192, DENALI_RAM_BASE, memsize - DENALI_RAM_BASE, 7, flags, (uint32_t)-1, 0) != DENALI_RAM_BASE) die("map ram");

    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", child);
    memfd = open(path, O_RDWR);
    if (memfd < 0) die(path);
    if (probe) {
        wr32(DENALI_RAM_BASE, 1);
        finish(rd32(DENALI_RAM_BASE) == 1 ? 0 : 2);
    }

    /* Load PT_LOAD segments; IMAGE_END = page-rounded end of the highest one. */
    uint32_t image_end = DENALI_IMAGE_BASE;
    for (int k = 0; k < eh->e_phnum; k++) {
        Elf32_Phdr *ph = (Elf32_Phdr *)(elf + eh->e_phoff + (size_t)k * eh->e_phentsize);
        if (ph->p_type != PT_LOAD || ph->p_memsz == 0) continue;
        if (ph->p_vaddr < DENALI_IMAGE_BASE || ph->p_vaddr + ph->p_memsz > memsize - stacksize) {
            fprintf(stderr, "hostrun: segment at 0x%x does not fit\n", ph->p_vaddr);
            finish(2);
        }
        mem_write(ph->p_vaddr, elf + ph->p_offset, ph->p_filesz);
        uint32_t end = (ph->p_vaddr + ph->p_memsz + 0xfff) & ~0xfffu;
        if (end > image_end) image_end = end;
    }

    /* Read-only virtual registers and boot arguments, as Yakima's boot-image does. */
    char args[DENALI_BOOTARGS_MAX];
    uint32_t alen = 0, nargs = 0;
    for (; i < argc; i++, nargs++) {
        size_t l = strlen(argv[i]) + 1;
        if (alen + l > sizeof args) {
            fprintf(stderr, "hostrun: boot arguments too long\n");
            finish(2);
        }
        memcpy(args + alen, argv[i], l);
        alen += (uint32_t)l;
    }
    uint32_t ro[16] = {0};
    ro[DENALI_VREG_RO_MAGIC / 4] = DENALI_VREG_MAGIC;
    ro[DENALI_VREG_RO_ABI_VERSION / 4] = DENALI_ABI_VERSION;
    ro[DENALI_VREG_RO_MEMORY_SIZE / 4] = memsize;
    ro[DENALI_VREG_RO_TICK_RATE / 4] = DENALI_TICK_RATE;
    ro[DENALI_VREG_RO_VM_ID / 4] = 1;
    ro[DENALI_VREG_RO_IMAGE_END / 4] = image_end;
    ro[DENALI_VREG_RO_STACK_TOP / 4] = memsize;
    ro[DENALI_VREG_RO_STACK_SIZE / 4] = stacksize;
    ro[DENALI_VREG_RO_ARGC / 4] = nargs;
    ro[DENALI_VREG_RO_BOOTARGS_ADDR / 4] = DENALI_BOOTARGS_BASE;
    ro[DENALI_VREG_RO_BOOTARGS_LEN / 4] = alen;
    mem_write(DENALI_VREG_RO_BASE, ro, sizeof ro);
    mem_write(DENALI_BOOTARGS_BASE, args, alen);

    /* Guest registers: all zero, esp = STACK_TOP, eip = entry. */
    struct user_regs_struct r;
    if (ptrace(PTRACE_GETREGS, child, 0, &r) < 0) die("getregs");
    r.rax = r.rbx = r.rcx = r.rdx = r.rsi = r.rdi = r.rbp = 0;
    r.rsp = memsize;
    r.rip = eh->e_entry;
    r.eflags = 0x202;
    if (ptrace(PTRACE_SETREGS, child, 0, &r) < 0) die("setregs");

    if (quantum_us) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_alarm;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval it = {{0, (long)quantum_us}, {0, (long)quantum_us}};
        timer_armed = 1;
        setitimer(ITIMER_REAL, &it, NULL);
    }

    for (;;) {
        /* VM entry: clocks, console interrupt, upcall delivery. */
        update_clocks();
        if (!stdin_eof && stdin_ready(0, NULL)) raise_irq(DENALI_IRQ_CONSOLE);
        uint32_t rw = DENALI_VREG_RW_BASE;
        if (rd32(rw + DENALI_VREG_RW_INTERRUPT_ENABLE) && rd32(rw + DENALI_VREG_RW_UPCALL_ENTRY) &&
            rd32(rw + DENALI_VREG_RW_PENDING)) {
            if (ptrace(PTRACE_GETREGS, child, 0, &r) < 0) die("getregs");
            uint32_t esp = (uint32_t)r.rsp;
            wr32(esp - 4, (uint32_t)r.rip);
            wr32(esp - 8, (uint32_t)r.eflags);
            r.rsp = esp - 8;
            r.rip = rd32(rw + DENALI_VREG_RW_UPCALL_ENTRY);
            wr32(rw + DENALI_VREG_RW_INTERRUPT_ENABLE, 0);
            if (ptrace(PTRACE_SETREGS, child, 0, &r) < 0) die("setregs");
            n_upcalls++;
        }
        if (ptrace(PTRACE_CONT, child, 0, 0) < 0) die("cont");
        int sig = wait_stop();
        if (ptrace(PTRACE_GETREGS, child, 0, &r) < 0) die("getregs");
        uint32_t eip = (uint32_t)r.rip;
        if (sig == SIGUSR1) { /* quantum expired: "time has passed" (paper 3.1.1), re-enter */
            n_quanta++;
            raise_irq(DENALI_IRQ_TIMER);
            continue;
        }
        unsigned char op = 0;
        if (sig == SIGSEGV) mem_read(eip, &op, 1);
        if (sig == SIGSEGV && op == 0xef) { /* outl %eax, %dx */
            uint32_t port = (uint32_t)r.rdx & 0xffff;
            if (port < DENALI_HYPERCALL_PORT_BASE || port >= DENALI_HYPERCALL_PORT_BASE + DENALI_HYPERCALL_PORT_COUNT ||
                hypercall(port - DENALI_HYPERCALL_PORT_BASE, (uint32_t)r.rax) < 0) {
                fprintf(stderr, "hostrun: fault: bad hypercall port 0x%x at eip 0x%x\n", port, eip);
                print_stats();
                finish(139);
            }
            if (ptrace(PTRACE_GETREGS, child, 0, &r) < 0) die("getregs");
            r.rip = eip + 1;
            if (ptrace(PTRACE_SETREGS, child, 0, &r) < 0) die("setregs");
            continue;
        }
        if (sig == SIGSEGV && op == 0xf4) { /* hlt */
            fflush(stdout);
            fprintf(stderr, "hostrun: guest halted\n");
            print_stats();
            finish(0);
        }
        siginfo_t si;
        memset(&si, 0, sizeof si);
        ptrace(PTRACE_GETSIGINFO, child, 0, &si);
        fflush(stdout);
        fprintf(stderr, "hostrun: fault: signal %d (%s) at eip 0x%x, address %p\n", sig, strsignal(sig), eip, si.si_addr);
        print_stats();
        finish(139);
    }
}
