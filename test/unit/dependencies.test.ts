/**
 * docs/libraries.md: runtime dependencies go into the production image (`npm ci --omit=dev`), dev
 * dependencies are for tests, benchmarks and tooling only, and nothing in src/ or workers/ imports a dev
 * dependency. Read against the sources: every package src/ or workers/ loads (import, dynamic import,
 * require, require.resolve) is a runtime dependency, and every runtime dependency is loaded there (or by
 * the start command: tsx). `standardwebhooks`, used by the tests alone, was a runtime dependency and
 * went into the image for nothing.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname ?? '.', '../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string>; scripts: Record<string, string> };

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : /\.(ts|js|mjs|cjs)$/.test(f) ? [p] : [];
  });
}

/** The packages a file loads: `from '…'`, `import('…')`, `require('…')`, `require.resolve('…')`, `req('…')` (a createRequire), bare specifiers only. */
function packagesOf(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\brequire(?:\.resolve)?\s*\(\s*|\breq\s*\(\s*|^\s*import\s+)(['"])([^'"]+)\1/gm)) {
    const spec = m[2]!;
    if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]!)) continue;
    found.push(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
  }
  return found;
}

const loaded = new Set([...sources(join(root, 'src')), ...sources(join(root, 'workers'))].flatMap((f) => packagesOf(readFileSync(f, 'utf8'))));

test('src/ and workers/ load runtime dependencies only', () => {
  expect([...loaded].filter((p) => !(p in pkg.dependencies)).sort()).toEqual([]);
});

test('every runtime dependency is loaded by src/ or workers/ (tsx by the start command), so none goes into the image unused', () => {
  expect(pkg.scripts['start']).toContain('--import tsx');
  const used = new Set([...loaded, 'tsx']);
  expect(Object.keys(pkg.dependencies).filter((d) => !used.has(d)).sort()).toEqual([]);
});
