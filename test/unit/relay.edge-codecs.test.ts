/**
 * How the edge's thread names a publish's codecs (EDGE_CODECS, run in the edge's thread), by ffmpeg's
 * names: the relay passes on only what the platforms take (RELAY_CODECS, H.264 + AAC). The e2e test
 * (test/e2e/relay.codecs.test.ts) publishes FLV1 + MP3 with a real ffmpeg; ffmpeg 5.1 writes no HEVC or
 * AV1 into FLV, so those tags (an enhanced-RTMP FourCC, or the legacy codec ids 12 and 13 some encoders
 * use) and their metadata are checked here.
 */
import { EDGE_CODECS, RELAY_CODECS } from '../../src/relay/ingest.edge.js';

const { videoCodecOf, audioCodecOf, metaCodecOf, VIDEO_IDS, AUDIO_IDS } = new Function(`${EDGE_CODECS}; return { videoCodecOf, audioCodecOf, metaCodecOf, VIDEO_IDS, AUDIO_IDS };`)() as {
  videoCodecOf: (payload: Buffer) => string | undefined;
  audioCodecOf: (payload: Buffer) => string | undefined;
  metaCodecOf: (value: unknown, ids: string[]) => string | undefined;
  VIDEO_IDS: string[];
  AUDIO_IDS: string[];
};
/** An enhanced-RTMP video tag's first bytes: IsExHeader, a keyframe, packet type 1 (coded frames), the FourCC. */
const exVideo = (fourcc: string): Buffer => Buffer.concat([Buffer.from([0x80 | (1 << 4) | 1]), Buffer.from(fourcc, 'latin1'), Buffer.alloc(3)]);
const fourccNumber = (f: string): number => Buffer.from(f, 'latin1').readUInt32BE(0);

test('video tags: H.264 is taken; FLV1, VP6, HEVC and AV1 (legacy ids or FourCCs) are named as ffmpeg does', () => {
  expect([0x17, 0x27, 0x22, 0x24, 0x1c, 0x1d].map((b) => videoCodecOf(Buffer.from([b, 0, 0, 0, 0])))).toEqual(['h264', 'h264', 'flv1', 'vp6f', 'hevc', 'av1']);
  expect(['hvc1', 'av01', 'vp09', 'avc1'].map((f) => videoCodecOf(exVideo(f)))).toEqual(['hevc', 'av1', 'vp9', 'h264']);
  expect(videoCodecOf(Buffer.alloc(0))).toBeUndefined();
  expect(RELAY_CODECS.video).toBe('h264');
});

test('audio tags: AAC is taken; MP3, Speex, Nellymoser, G.711 are named', () => {
  expect([0xaf, 0x2f, 0xb6, 0x62, 0x72].map((b) => audioCodecOf(Buffer.from([b, 1])))).toEqual(['aac', 'mp3', 'speex', 'nellymoser', 'pcm_alaw']);
  expect(audioCodecOf(Buffer.alloc(0))).toBeUndefined();
  expect(RELAY_CODECS.audio).toBe('aac');
});

test('metadata: codec ids, FourCC numbers and strings name a codec; anything else tells nothing (the tags decide)', () => {
  expect([metaCodecOf(7, VIDEO_IDS), metaCodecOf(2, VIDEO_IDS), metaCodecOf(fourccNumber('hvc1'), VIDEO_IDS), metaCodecOf('avc1', VIDEO_IDS)]).toEqual(['h264', 'flv1', 'hevc', 'h264']);
  expect([metaCodecOf(10, AUDIO_IDS), metaCodecOf(2, AUDIO_IDS), metaCodecOf('mp4a', AUDIO_IDS)]).toEqual(['aac', 'mp3', 'aac']);
  expect([metaCodecOf(undefined, VIDEO_IDS), metaCodecOf(0, VIDEO_IDS), metaCodecOf(9, VIDEO_IDS), metaCodecOf('H.264', VIDEO_IDS), metaCodecOf(7.5, VIDEO_IDS), metaCodecOf(300, VIDEO_IDS)]).toEqual([undefined, undefined, undefined, undefined, undefined, undefined]);
});

test("metadata naming an Object property (videocodecid: 'constructor') tells nothing: a name, never a function that cannot cross to the main thread", () => {
  const names = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'];
  expect(names.map((n) => metaCodecOf(n, VIDEO_IDS))).toEqual(names.map(() => undefined));
  // An enhanced-RTMP tag's FourCC goes through the same table.
  expect(videoCodecOf(Buffer.concat([Buffer.from([0x90]), Buffer.from('toSt', 'latin1')]))).toBe('fourcc "toSt"');
});
