/**
 * `npm run sim` and `npm run demo` (README "Set up") meet the same first-run troubles as `npm start`
 * and answer them the same way: one paragraph or the configuration message, exit 1, no stack. The
 * simulators' ports in use (a second `npm run sim`, or `npm run sim` beside a running one's RTMP
 * sinks) ended on an EADDRINUSE stack trace, SIM_PORT=abc said "expected number, received NaN", and
 * the demo with no Redis at REDIS_URL died on RedisUnavailableError's stack. Real child processes.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { resolve } from 'node:path';
import { testPort } from '../helpers/ports.js';

const root = resolve(import.meta.dirname ?? '.', '../..');

function run(entry: string, env: Record<string, string>, timeoutMs = 40_000): Promise<{ code: number | null; out: string }> {
  return new Promise((res) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', resolve(root, entry)], {
      cwd: root,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.on('exit', (code) => {
      clearTimeout(t);
      res({ code, out });
    });
  });
}

const noStack = (out: string): void => {
  expect(out).not.toMatch(/^\s+at .+[:(]/m);
  expect(out).not.toMatch(/node:internal|Error: /);
};

/** A port something else listens on (another program, another `npm run sim`). */
async function held(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, server };
}

test.each(['SIM_RTMP_PORT', 'SIM_PORT'] as const)('npm run sim with %s in use: exit 1, one paragraph naming it, no stack', async (setting) => {
  const { port, server } = await held();
  try {
    const env = setting === 'SIM_PORT' ? { SIM_PORT: String(port), SIM_RTMP_PORT: '0' } : { SIM_PORT: String(await testPort()), SIM_RTMP_PORT: String(port) };
    const { code, out } = await run('src/main/sim.ts', env);
    expect(code).toBe(1);
    expect(out).toContain(`${setting}=${port}`);
    expect(out).toMatch(/already in use/);
    noStack(out);
  } finally {
    server.close();
  }
});

test('npm run sim with SIM_PORT=abc: the configuration message shows the value', async () => {
  const { code, out } = await run('src/main/sim.ts', { SIM_PORT: 'abc' });
  expect(code).toBe(1);
  expect(out.trim()).toBe('invalid configuration:\n  SIM_PORT: must be a number (got "abc")');
});

test('npm run demo with no Redis at REDIS_URL: exit 1, the paragraph naming REDIS_URL, no stack', async () => {
  const port = await testPort();
  const { code, out } = await run('src/main/demo.ts', { REDIS_URL: `redis://127.0.0.1:${port}` });
  expect(code).toBe(1);
  expect(out).toContain(`REDIS_URL=redis://127.0.0.1:${port}`);
  expect(out).toMatch(/tried 5 times/);
  noStack(out);
});

test('npm run demo with a bad setting in the shell: exit 1, the configuration message, no stack', async () => {
  const { code, out } = await run('src/main/demo.ts', { LOG_LEVEL: 'loud', REDIS_URL: 'redis://127.0.0.1:1' });
  expect(code).toBe(1);
  expect(out).toMatch(/^invalid configuration:\n {2}LOG_LEVEL: /m);
  noStack(out);
});
