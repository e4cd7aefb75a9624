import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { cImage, denaliBin, root, SPINNER_C, TICKER_C } from './helpers.js';

/**
 * The operator's commands end to end, as a person runs them: a background instance, VMs added
 * to it, ps/logs/stop over its control socket, and `denali top` in a real terminal (tmux).
 */

const hasTmux = (() => {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!hasTmux) console.log('skipping denali top in tmux: tmux is not installed (.ci/run installs it)');

let rt = '';
let dir = '';
const env = () => ({ DENALI_RUNTIME_DIR: rt, DENALI_DEBUG: '' });

function denali(args: string[], opts: { timeout?: number } = {}) {
  return execa(denaliBin, args, { cwd: root, reject: false, timeout: opts.timeout ?? 60_000, env: env(), input: '' });
}

/**
 * tmux on a private server of this test's own: a server the caller may already run (a CI job
 * inside tmux, a developer's session) would lend the panes its environment; colour and CI
 * switches are left out so each session sets only what it tests.
 */
const tmuxEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !['TMUX', 'TMUX_PANE', 'NO_COLOR', 'FORCE_COLOR', 'CI', 'CONTINUOUS_INTEGRATION'].includes(k)),
) as Record<string, string>;
const tmuxSocket = `denali-e2e-${process.pid}`;
const tmux = (args: string[], opts: { reject?: boolean } = {}) =>
  execa('tmux', ['-L', tmuxSocket, '-f', '/dev/null', ...args], { env: tmuxEnv, extendEnv: false, reject: opts.reject ?? true });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(150);
  }
}

describe('operator commands against a background instance', () => {
  let ticker = '';
  let spinner = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'denali-ops-'));
    rt = join(dir, 'rt');
    ticker = await cImage('ticker', TICKER_C, dir);
    spinner = await cImage('spinner', SPINNER_C, dir);
  });

  afterAll(async () => {
    await denali(['stop', 'e2e']);
    if (hasTmux) await tmux(['kill-server'], { reject: false });
    await rm(dir, { recursive: true, force: true });
  });

  it('with no instance, ps, logs and top say so clearly', async () => {
    const ps = await denali(['ps']);
    expect(ps.exitCode).toBe(0);
    expect(ps.stderr).toMatch(/no Denali instance is running/);
    expect(JSON.parse((await denali(['ps', '--json'])).stdout)).toEqual([]);
    const top = await denali(['top']);
    expect(top.exitCode).toBe(1);
    expect(top.stderr).toMatch(/^denali: no Denali instance is running \(start one with `denali serve`/);
    const logs = await denali(['logs', 'web']);
    expect(logs.exitCode).toBe(1);
    expect(logs.stderr).toMatch(/no Denali instance is running/);
  });

  it('serve --detach starts a named instance in the background; run --host adds VMs to it', async () => {
    const s = await denali(['serve', '--detach', '--name', 'e2e', '--backend', 'emu', ticker, ticker]);
    expect(s.stderr).toMatch(/instance e2e runs in the background/);
    expect(s.stdout).toBe('e2e');
    expect(s.exitCode).toBe(0);
    const again = await denali(['serve', '--detach', '--name', 'e2e']);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toMatch(/already running/);

    const add = await denali(['run', '--host', 'e2e', '--name', 'web', ticker]);
    expect(add.stderr).toBe('');
    expect(add.stdout).toBe('e2e/web');
    const add2 = await denali(['run', '--host', '', spinner]);
    expect(add2.exitCode).toBe(1);
    expect(add2.stderr).toMatch(/bad instance name ''/);
    const add3 = await execa(denaliBin, ['run', spinner, '--host', 'e2e'], { cwd: root, reject: false, env: env() });
    expect(add3.stdout).toBe('e2e/spinner');
    const bad = await denali(['run', '--host', 'e2e', join(dir, 'nothing.dni')]);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/nothing\.dni' does not exist/);
  });

  it('ps lists the instance and its VMs; ps --json gives the API shapes', async () => {
    const ps = await denali(['ps']);
    expect(ps.exitCode).toBe(0);
    expect(ps.stdout).toMatch(/^INSTANCE +VM +STATE +CPU +MEM +UPTIME +IMAGE$/m);
    for (const name of ['ticker', 'ticker-2', 'web', 'spinner']) expect(ps.stdout).toMatch(new RegExp(`^e2e +${name} +(idle|runnable)`, 'm'));
    const json = JSON.parse((await denali(['ps', '--json'])).stdout) as { instance: { name: string }; vms: { name: string }[] }[];
    expect(json).toHaveLength(1);
    expect(json[0]!.instance.name).toBe('e2e');
    expect(json[0]!.vms.map((v) => v.name)).toEqual(['ticker', 'ticker-2', 'web', 'spinner']);
  });

  it('logs prints the recent console; logs -f follows it', async () => {
    await until('web to tick', async () => /tick 2\n/.test((await denali(['logs', 'web'])).stdout + '\n') || undefined);
    const logs = await denali(['logs', 'e2e/web']);
    expect(logs.stdout).toMatch(/^tick 0\ntick 1\ntick 2/);
    const f = execa(denaliBin, ['logs', '-f', '--bytes', '1', 'web'], { cwd: root, reject: false, env: env() });
    let seen = '';
    f.stdout!.on('data', (c: Buffer) => (seen += c.toString()));
    await until('followed ticks', () => (/tick \d+\n.*tick \d+\n/s.test(seen) ? true : undefined));
    f.kill('SIGINT');
    expect((await f).exitCode).toBe(0);
    const none = await denali(['logs', 'nobody']);
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toMatch(/no VM named 'nobody' in instance e2e/);
  });

  it.skipIf(!hasTmux)('denali top in tmux: sort, filter, drill in, stop a VM, quit', async () => {
    const session = 'denali-e2e-top';
    await tmux(['kill-session', '-t', session], { reject: false });
    await tmux([
      'new-session', '-d', '-s', session, '-x', '80', '-y', '24',
      '-e', `DENALI_RUNTIME_DIR=${rt}`,
      // An operator's shell inside a CI job: ink would draw only its last frame there.
      '-e', 'CI=true',
      `cd ${root} && ${denaliBin} top; echo TOP-EXITED $?; sleep 600`,
    ]);
    const screen = async () => (await tmux(['capture-pane', '-p', '-t', session])).stdout;
    const waitFor = async (what: string, re: RegExp) => {
      try {
        return await until(what, async () => {
          const s = await screen();
          return re.test(s) ? s : undefined;
        });
      } catch (e) {
        throw new Error(`${(e as Error).message}; the screen:\n${await screen()}`);
      }
    };
    const keys = (...k: string[]) => tmux(['send-keys', '-t', session, ...k]);

    let s = await waitFor('the table', /NAME +STATE/);
    expect(s.split('\n')[0]).toMatch(/^denali top · e2e \(emu, pid \d+\)/);
    expect(s).toMatch(/VMs 4: /);
    for (const line of s.split('\n')) expect(line.length).toBeLessThanOrEqual(80);

    await keys('1'); // sort by NAME
    s = await waitFor('sorted by name', /sorted by NAME/);
    const names = () => s.split('\n').filter((l) => /^(ticker|web|spinner)/.test(l)).map((l) => l.split(/ +/)[0]);
    expect(names()).toEqual(['spinner', 'ticker', 'ticker-2', 'web']);
    await keys('r');
    s = await waitFor('reversed', /reversed/);
    expect(names()).toEqual(['web', 'ticker-2', 'ticker', 'spinner']);

    await keys('/', 'tick', 'Enter');
    s = await waitFor('filtered', /2\/4 VMs matching 'tick'/);
    expect(names()).toEqual(['ticker-2', 'ticker']);

    await keys('Enter'); // drill into the selected VM (the first row)
    s = await waitFor('the detail view with console', /VM ticker-2 \(id 2\)[\s\S]*tick \d+/);
    expect(s).toMatch(/^instr\/s +\S+/m);
    await keys('s');
    await waitFor('the stop question', /stop ticker-2\? \(y\/N\)/);
    await keys('y');
    s = await waitFor('the VM stopped', /ticker-2: stop done \(now stopped\)/);
    await keys('Escape');
    s = await waitFor('back to the table', /NAME.? +STATE/);
    const ps = await denali(['ps']);
    expect(ps.stdout).toMatch(/^e2e +ticker-2 +stopped/m);
    expect(ps.stdout).toMatch(/^e2e +ticker +idle|^e2e +ticker +runnable/m);

    await keys('?');
    await waitFor('help', /Keys \(any key returns\)/);
    await keys('q');
    await waitFor('top to exit', /TOP-EXITED 0/);
  });

  it.skipIf(!hasTmux)('denali top respects NO_COLOR and follows a resize', async () => {
    const session = 'denali-e2e-nocolor';
    const start = async (extra: string[]) => {
      await tmux(['kill-session', '-t', session], { reject: false });
      await tmux(['new-session', '-d', '-s', session, '-x', '80', '-y', '24', '-e', `DENALI_RUNTIME_DIR=${rt}`, ...extra, `cd ${root} && ${denaliBin} top; sleep 600`]);
      const capture = async () => (await tmux(['capture-pane', '-p', '-e', '-t', session])).stdout;
      return until('the table', async () => {
        const s = await capture();
        return /NAME/.test(s) && /runnable|idle/.test(s) ? s : undefined;
      }).catch(async (e: Error) => {
        throw new Error(`${e.message}; the screen:\n${await capture()}`);
      });
    };
    const colored = await start(['-e', 'TERM=xterm-256color']);
    expect(colored).toMatch(/\x1b\[(?:[0-9;]*;)?(3[0-7]|38;5;\d+|9[0-7])m/);
    const plain = await start(['-e', 'NO_COLOR=1', '-e', 'TERM=xterm-256color']);
    expect(plain).not.toMatch(/\x1b\[(?:[0-9;]*;)?(3[0-7]|38;5;\d+|9[0-7])m/);
    await tmux(['resize-window', '-t', session, '-x', '120', '-y', '30']);
    await until('the wider table', async () => {
      const s = (await tmux(['capture-pane', '-p', '-t', session])).stdout;
      return s.split('\n').some((l) => l.length > 100 && /UPTIME/.test(l)) ? true : undefined;
    });
  });

  it('stop VM stops one VM; stop INSTANCE ends the instance and removes its socket', async () => {
    const one = await denali(['stop', 'spinner']);
    expect(one.stdout).toBe('spinner');
    expect((await denali(['ps'])).stdout).toMatch(/^e2e +spinner +stopped/m);
    const again = await denali(['stop', 'spinner']);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toMatch(/already been stopped/);
    const all = await denali(['stop', 'e2e']);
    expect(all.stdout).toBe('e2e');
    await until('the socket to go', () => (existsSync(join(rt, 'e2e.sock')) ? undefined : true));
    expect((await denali(['ps'])).stderr).toMatch(/no Denali instance is running/);
  });
});
