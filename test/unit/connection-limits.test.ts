/** src/lib/connection-limits.ts: the API's bound on connections, from the process's open-files limit. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { maxHttpConnections, maxRtmpConnections, openFilesLimit } from '../../src/lib/connection-limits.js';

const dir = mkdtempSync(join(tmpdir(), 'limits-'));
function limits(line: string): string {
  const p = join(dir, `limits-${Math.random().toString(36).slice(2)}`);
  writeFileSync(p, `Limit                     Soft Limit           Hard Limit           Units     \nMax cpu time              unlimited            unlimited            seconds   \n${line}\n`);
  return p;
}

test('openFilesLimit reads the soft limit; unlimited or unreadable is no bound', () => {
  expect(openFilesLimit(limits('Max open files            20000                40000                files     '))).toBe(20000);
  expect(openFilesLimit(limits('Max open files            unlimited            unlimited            files     '))).toBeUndefined();
  expect(openFilesLimit(join(dir, 'absent'))).toBeUndefined();
});

test('maxHttpConnections and maxRtmpConnections leave a quarter of the descriptors to the rest of the process', () => {
  expect(maxHttpConnections(1024)).toBe(640);
  expect(maxRtmpConnections(1024)).toBe(128);
  expect(maxHttpConnections(20000)).toBe(12500);
  expect(maxRtmpConnections(20000)).toBe(2500);
  expect(maxHttpConnections(8)).toBe(16);
  expect(maxHttpConnections(0)).toBeUndefined();
});
