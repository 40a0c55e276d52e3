import { createServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { startIngestEdge } from '../../src/relay/ingest.edge.js';

test('an ingest edge that cannot listen leaves no thread behind', async () => {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  const before = process.getActiveResourcesInfo().filter((h) => /Worker|MessagePort/.test(h)).length;
  await expect(startIngestEdge({ port, host: '127.0.0.1', relay: {} as never, shows: {} as never, log: pino({ level: 'silent' }), playKeys: [] })).rejects.toMatchObject({ code: 'EADDRINUSE' });
  await sleep(500);
  const after = process.getActiveResourcesInfo().filter((h) => /Worker|MessagePort/.test(h));
  s.close();
  expect(after.length).toBe(before);
});
