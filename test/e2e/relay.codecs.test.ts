/**
 * The platforms' RTMP ingest takes H.264 video and AAC audio, and the relay copies the source's codecs
 * (`-c copy`, no transcoding). A source in anything else (here FLV1, Sorenson H.263, with MP3: a real
 * ffmpeg encoding them) used to be pushed to every platform all the same, refused or broken there, with
 * nothing in the show view. The edge now looks at the publish's codecs: such a publish reaches no
 * platform, each mirror's relay is `failed` with `lastError` `codec_unsupported: …` naming them, and a
 * publish in H.264 and AAC afterwards is relayed as usual. A source without audio, or without video,
 * is relayed as before (nothing of the missing kind is a codec the platforms refuse).
 * One operator-linked platform (TikTok's simulator) keeps it cheap.
 */
import { waitFor, type TestService } from '../helpers/service.js';
import type { SimStreamView, TestSim } from '../helpers/sim.js';
import { platformsPerFile } from '../helpers/platforms.js';
import { goLive, scheduledIngest, scheduleRelayedShow, viewOf, type MirrorViewT } from '../helpers/relay.js';
import { logSink } from '../helpers/log-sink.js';
import { testPort } from '../helpers/ports.js';
import { AMF_NULL, amfNumber, amfString, chunk, streamOn } from '../helpers/rtmp-client.js';
import { EDGE_PLAY_LABEL, edgePlayToken, startIngestEdge } from '../../src/relay/ingest.edge.js';
import { publishTestPattern, type PublishOptions } from '../helpers/ffmpeg.js';

const P = 'relay-codecs';
const PLATFORM = 'tiktok';
let svc: TestService;
let sim: TestSim;
let secret: string;

platformsPerFile(P, (started) => ({ svc, sim, secret } = started), { workers: true, relay: true, env: { RELAY_POLL_MS: '250' } }, [PLATFORM]);

/** A live show with its one mirror linked to the simulator's ingest: the encoder's target and the sink's stream key. */
async function liveShow(showId: string): Promise<{ target: string; sinkKey: string }> {
  await scheduleRelayedShow(svc, sim, P, secret, showId, {}, [PLATFORM]);
  await goLive(svc, P, secret, showId);
  const v = await viewOf(svc, P, showId);
  return { target: `${v.show.ingest.url}/${v.show.ingest.streamKey}`, sinkKey: v.mirrors[0]!.ingest!.streamKey! };
}
const sinkOf = async (key: string): Promise<SimStreamView | undefined> => (await sim.streams(PLATFORM)).find((s) => s.streamKey === key);
const relayOf = async (showId: string): Promise<MirrorViewT['relay']> => (await viewOf(svc, P, showId)).mirrors[0]!.relay;

/** Publishes until the mirror is sending or failed (at most 20 s), then stops: the relay state reached, and the sink's view. */
async function publishUntilSettled(showId: string, target: string, sinkKey: string, codecs: Pick<PublishOptions, 'videoCodec' | 'audioCodec'>): Promise<{ relay: MirrorViewT['relay']; sink: SimStreamView | undefined }> {
  const enc = publishTestPattern({ target, size: '320x180', rate: 25, videoBitrate: '300k', ...codecs });
  try {
    const relay = await waitFor(async () => {
      const st = await relayOf(showId);
      return st.state === 'sending' || st.state === 'failed' ? st : undefined;
    }, 20_000, 100);
    // What a push that started would have got to the sink within 1.5 s (a relay that sends is seen within
    // a second). The look ends early once the sink has media and a codec for each kind the publish
    // carries, which a refused publish never gives it: that one is still watched for the whole 1.5 s.
    const carries = { video: codecs.videoCodec !== 'none', audio: codecs.audioCodec !== 'none' };
    const until = Date.now() + 1500;
    let sink = await sinkOf(sinkKey);
    while (Date.now() < until && !(sink && sink.bytes > 0 && (!carries.video || sink.videoCodec) && (!carries.audio || sink.audioCodec))) {
      await new Promise((r) => setTimeout(r, 100));
      sink = await sinkOf(sinkKey);
    }
    return { relay, sink };
  } finally {
    await enc.stop();
  }
}

test('a source in FLV1 + MP3 is not pushed: the mirror says codec_unsupported; republished in H.264 + AAC it is relayed', async () => {
  const { target, sinkKey } = await liveShow('c1');
  const bad = await publishUntilSettled('c1', target, sinkKey, { videoCodec: 'flv1', audioCodec: 'mp3' });
  expect({ state: bad.relay.state, bytes: bad.sink?.bytes ?? 0, sinkCodecs: [bad.sink?.videoCodec ?? null, bad.sink?.audioCodec ?? null] }).toEqual({ state: 'failed', bytes: 0, sinkCodecs: [null, null] });
  expect(bad.relay.lastError).toMatch(/^codec_unsupported: the show's stream is video flv1 \(not taken\), audio mp3 \(not taken\);/);
  expect(bad.relay.lastError).not.toContain(target.split('/').pop());
  // The bad publish over, the mirror waits for the next one; that one, in H.264 + AAC, goes out.
  await waitFor(async () => (await relayOf('c1')).state === 'idle', 10_000, 100);
  const good = await publishUntilSettled('c1', target, sinkKey, {});
  expect({ state: good.relay.state, lastError: good.relay.lastError, sinkCodecs: [good.sink?.videoCodec, good.sink?.audioCodec] }).toEqual({ state: 'sending', lastError: null, sinkCodecs: ['h264', 'aac'] });
  expect(good.sink!.bytes).toBeGreaterThan(0);
}, 90_000);

test('sources without audio, or without video, are relayed as before', async () => {
  const { target, sinkKey } = await liveShow('c2');
  const videoOnly = await publishUntilSettled('c2', target, sinkKey, { audioCodec: 'none' });
  await waitFor(async () => (await relayOf('c2')).state !== 'sending', 10_000, 100);
  const audioOnly = await publishUntilSettled('c2', target, sinkKey, { videoCodec: 'none' });
  expect({ videoOnly: [videoOnly.relay.state, videoOnly.sink?.videoCodec], audioOnly: [audioOnly.relay.state, audioOnly.sink?.audioCodec] }).toEqual({
    videoOnly: ['sending', 'h264'],
    audioOnly: ['sending', 'aac'],
  });
}, 90_000);

/**
 * The edge's side of it: the publish's source carries the codecs, one warning names the show and them
 * (never the key), and a reader playing the stream gets none of its media.
 */
test('the edge passes none of an FLV1 + MP3 publish on, marks its source, and warns once', async () => {
  const { key } = await scheduledIngest(svc, P, secret, 'c3');
  const { log, lines } = logSink<{ msg: string; level: number; showId?: string; videoCodec?: string; audioCodec?: string }>();
  const playKeys = svc.rt.box.derivedKeys(EDGE_PLAY_LABEL);
  const edge = await startIngestEdge({ port: await testPort(), host: '127.0.0.1', relay: svc.rt.relay, shows: svc.rt.shows, log, playKeys });
  const player = await streamOn(edge.port);
  player.socket.write(chunk(20, Buffer.concat([amfString('play'), amfNumber(4), AMF_NULL, amfString(`${key}?play=${edgePlayToken(playKeys[0]!, key)}`)]), 1));
  const enc = publishTestPattern({ target: `rtmp://127.0.0.1:${edge.port}/live/${key}`, size: '320x180', rate: 25, videoBitrate: '300k', videoCodec: 'flv1', audioCodec: 'mp3' });
  try {
    const source = await waitFor(async () => {
      const s = await svc.rt.relay.source(P, 'c3');
      return s?.codecsRefused?.video && s.codecsRefused.audio ? s : undefined;
    }, 10_000, 100);
    await new Promise((r) => setTimeout(r, 2000)); // ~75 KB of media sent meanwhile
    const warned = lines.filter((l) => l.level === 40 && l.msg.startsWith('ingest publish not relayed: codec_unsupported'));
    expect({
      codecs: source.codecsRefused,
      warned: warned.map((l) => [l.showId, l.videoCodec, l.audioCodec]),
      playerGotMedia: player.received().length > 8000,
      encoderOn: enc.child.exitCode === null,
      keyLogged: JSON.stringify(lines).includes(key),
    }).toEqual({ codecs: { video: 'flv1', audio: 'mp3' }, warned: [['c3', 'flv1', 'mp3']], playerGotMedia: false, encoderOn: true, keyLogged: false });
  } finally {
    await enc.stop();
    player.socket.destroy();
    await edge.close();
  }
}, 60_000);
