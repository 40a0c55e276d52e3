/**
 * README.md and docs/*.md as a newcomer reads them: every relative link opens a file of the
 * repository, every `#anchor` (in the same file or another .md) is a heading there, and the README's
 * configuration table lists exactly the variables the service reads (ENVIRONMENT_VARIABLES). The demo's "(sample output)" link pointed at `#the-demo`, a section removed
 * long before, and nothing noticed.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ENVIRONMENT_VARIABLES } from '../../src/config/config.js';

const root = resolve(import.meta.dirname ?? '.', '../..');
const files = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** The text outside fenced code blocks (a `# comment` in a shell block is no heading, a `](x)` there no link). */
function prose(file: string): string {
  const out: string[] = [];
  let fenced = false;
  for (const line of readFileSync(join(root, file), 'utf8').split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    else if (!fenced) out.push(line);
  }
  return out.join('\n');
}

/** GitHub's heading anchors: lower case, punctuation but `-` and `_` dropped, spaces to `-`, repeats numbered. */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const m of prose(file).matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const text = m[1]!.replace(/`/g, '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const base = text.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    result.add(n === 0 ? base : `${base}-${n}`);
  }
  return result;
}

test('every relative link and anchor in README.md and docs/*.md resolves', () => {
  const broken: string[] = [];
  for (const file of files) {
    // Inline code may show link syntax; only real links count.
    const text = prose(file).replace(/`[^`\n]*`/g, '');
    for (const m of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const link = m[1]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // http:, https:, mailto:
      const [path, anchor] = link.split('#') as [string, string | undefined];
      const target = path === '' ? join(root, file) : resolve(dirname(join(root, file)), decodeURI(path));
      if (!existsSync(target)) {
        broken.push(`${file}: ${link} (no file ${relative(root, target)})`);
        continue;
      }
      if (anchor !== undefined && target.endsWith('.md') && !anchors(relative(root, target)).has(anchor)) {
        broken.push(`${file}: ${link} (no heading #${anchor} in ${relative(root, target)})`);
      }
    }
  }
  expect(broken).toEqual([]);
});

test("the README's configuration table is every variable the service reads", () => {
  const section = readFileSync(join(root, 'README.md'), 'utf8').split(/^## /m).find((s) => s.startsWith('Configuration\n'));
  expect(section).toBeDefined();
  const rows = [...section!.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \| `([a-zA-Z]+)` \|/gm)].map((m) => m[1]!);
  expect([...rows].sort()).toEqual([...ENVIRONMENT_VARIABLES].sort());
});
