/**
 * The relay benchmark's destination sinks, in their own process: the minimal RTMP drain
 * (src/simulators/rtmp-drain.ts), which answers the publish handshake and then only counts bytes per
 * `{platform}/{stream key}`. Apart from the bench process, whose event loop (simulators, HTTP, polling)
 * must not decide how fast 100 pushes are read; its CPU is reported on its own, for neither side.
 * IPC: `{type:'views', id}` → `{type:'views', id, list}`; it sends `{type:'receiving', id, receiving}`
 * when a key starts or stops receiving (YouTube's simulated stream turns active on it).
 */
import { RtmpDrain } from '../../src/simulators/rtmp-drain.js';
import { RECEIVING_IDLE_MS } from '../../src/simulators/rtmp-sink.js';
import { onStop, ready } from './child.js';

const drain = await RtmpDrain.start();
const receiving = new Map<string, boolean>();
const tick = setInterval(() => {
  for (const [id, on] of drain.receiving(RECEIVING_IDLE_MS)) {
    if ((receiving.get(id) ?? false) === on) continue;
    receiving.set(id, on);
    process.send?.({ type: 'receiving', id, receiving: on });
  }
}, 250);
process.on('message', (m: { type?: string; id?: number }) => {
  if (m?.type === 'views') process.send?.({ type: 'views', id: m.id, list: drain.list() });
});
onStop(async () => {
  clearInterval(tick);
  await drain.close();
});
ready({ port: drain.port });
