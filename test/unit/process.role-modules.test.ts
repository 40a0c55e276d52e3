/**
 * src/main/process.ts imports what only some roles run when those roles start (roleModules), not with
 * itself: every entry imports it once the configuration is read, so a worker, relay or scheduler
 * process, and a start that fails on Redis or DATA_DIR, never loaded fastify and the routes (about a
 * fifth of the module graph; each jest file that imports the service helpers paid for it too).
 * Checked in a fresh process, as an entry runs (node --import tsx); the API's module loaded afterwards
 * shows that the check sees fastify when it is there.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = resolve(import.meta.dirname ?? '.', '../..');
const url = (file: string): string => JSON.stringify(pathToFileURL(resolve(root, file)).href);

test('importing src/main/process.ts loads no fastify (the api role loads it when it starts)', () => {
  const code = `
    import { createRequire } from 'node:module';
    const loaded = () => Object.keys(createRequire(import.meta.url).cache).filter((f) => /[\\\\/]node_modules[\\\\/](fastify|@fastify[\\\\/][^\\\\/]+|fastify-type-provider-zod|@bull-board[\\\\/][^\\\\/]+)[\\\\/]/.test(f)).length;
    const mod = await import(${url('src/main/process.ts')});
    const before = { startRoles: typeof mod.startRoles, fastifyFiles: loaded() };
    await import(${url('src/api/app.ts')});
    process.stdout.write(JSON.stringify({ ...before, fastifyFilesWithApp: loaded() > 0 }));
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, encoding: 'utf8', timeout: 50_000 });
  expect(r.stderr).toBe('');
  expect(JSON.parse(r.stdout)).toEqual({ startRoles: 'function', fastifyFiles: 0, fastifyFilesWithApp: true });
});
