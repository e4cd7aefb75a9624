/**
 * The socket API in a VM without a network (hostrun emulates no NIC: the MTU register is 0):
 * calls that need the network fail cleanly with ENETDOWN, descriptor I/O on the console still
 * works, and a program that only waits on nothing is still reported as deadlocked (threads
 * waiting on sockets keep a VM alive only when a network exists).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildElf, freshDir, getHostRun, runElf } from './helpers.js';
import type { HostRun } from './helpers.js';

const hr: HostRun | string = await getHostRun();
const unavailable = typeof hr === 'string';
if (unavailable) console.warn(`net hostrun tests skipped: ${hr}`);

const SOURCE = String.raw`
#include <arpa/inet.h>
#include <errno.h>
#include <ilwaco/net.h>
#include <ilwaco/thread.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void *stuck(void *arg) {
    mutex_t *m = arg;
    mutex_lock(m); /* held by main: blocked forever */
    return 0;
}

/* Print a call's result and the errno it left (evaluated in that order). */
#define SHOW(label, call)                                   \
    do {                                                    \
        errno = 0;                                          \
        int r_ = (int)(call);                               \
        int e_ = errno;                                     \
        printf("%s %d errno %d\n", label, r_, e_);          \
    } while (0)

int main(void) {
    struct ilwaco_net_config cfg;
    SHOW("socket", socket(AF_INET, SOCK_STREAM, 0));
    SHOW("init", ilwaco_net_init());
    SHOW("config", ilwaco_net_config(&cfg));
    SHOW("ping", ilwaco_ping(inet_addr("10.73.0.1"), 8, 1000, 0));
    SHOW("send", send(7, "x", 1, 0));
    SHOW("send fd0", send(0, "x", 1, 0));
    SHOW("close0", close(0));
    SHOW("close99", close(99));
    fflush(stdout);
    write(1, "direct write\n", 13);
    SHOW("poll none", poll(0, 0, 20));
    struct pollfd p = {42, POLLIN, 0};
    int pr = poll(&p, 1, 0);
    printf("poll bad fd %d revents %x\n", pr, p.revents);
    char in[16] = {0};
    ssize_t n = read(0, in, sizeof in - 1);
    printf("read %d '%s'\n", (int)n, in);
    fflush(stdout);
    static mutex_t m = MUTEX_INITIALIZER;
    mutex_lock(&m);
    thread_create(stuck, &m, 0);
    thread_exit(0);
}
`;

describe.skipIf(unavailable)('sockets without a network (hostrun)', () => {
  it('fail with ENETDOWN, leave console descriptors working, and keep deadlock detection', async () => {
    if (typeof hr === 'string') throw new Error(hr);
    const dir = await freshDir('net-nonic-');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'denali.json'), JSON.stringify({ name: 'nonic', sources: ['main.c'], memory: '4M' }));
    await writeFile(join(dir, 'main.c'), SOURCE);
    const { path, config } = await buildElf(dir);
    const r = await runElf(hr, path, [config.name], { memory: config.memory, input: 'hello' });
    expect(r.stdout).toBe(
      [
        'socket -1 errno 100',
        'init -1 errno 100',
        'config -1 errno 100',
        'ping -1 errno 100',
        'send -1 errno 9',
        'send fd0 -1 errno 88',
        'close0 0 errno 0',
        'close99 -1 errno 9',
        'direct write',
        'poll none 0 errno 0',
        'poll bad fd 1 revents 20',
        "read 5 'hello'",
        'ilwaco: deadlock: 1 thread blocked forever with nothing to wake it',
        '',
      ].join('\n'),
    );
    expect(r.exitCode).toBe(125);
  });
});
