/**
 * How a source's refused codecs are stored in its hash (src/store/relay.repository.ts codecsField):
 * '{video}/{audio}' read an unknown FourCC's name with a '/' in it (`fourcc "a/b "`) as two codecs.
 */
import { codecsField, codecsOfField } from '../../src/store/relay.repository.js';

test('refused codecs round-trip through their stored field, a "/" in a name too', () => {
  const cases = [
    { video: 'fourcc "a/b "', audio: 'mp3' },
    { video: 'hevc', audio: null },
    { video: null, audio: 'fourcc "//x/"' },
  ];
  expect(cases.map((c) => codecsOfField(codecsField({ codecsRefused: c })))).toEqual(cases);
  expect([codecsField({}), codecsOfField(''), codecsOfField(undefined)]).toEqual(['', undefined, undefined]);
  // Anything else is no refused codecs: not JSON, or JSON of another shape.
  expect(['flv1/mp3', 'hevc/', '[', '{}', '"hevc"', '["hevc"]', '["hevc","mp3",null]', '[1,"mp3"]', '["hevc",{}]'].map(codecsOfField)).toEqual(Array(9).fill(undefined));
});
