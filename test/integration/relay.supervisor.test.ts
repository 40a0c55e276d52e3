/**
 * Destination supervision around a real ffmpeg (issue 10 item 3): the stall timer (RELAY_STALL_MS)
 * only runs once data flowed; before that a separate, longer start-up allowance
 * (RELAY_START_TIMEOUT_MS) applies, so an ffmpeg that is slow to start (a loaded machine) is not
 * killed before its first byte, and one that never starts is still restarted. The "slow ffmpeg" is
 * the real binary behind a shell wrapper that waits before exec'ing it; the input is a real FLV
 * file of the test pattern, the output a file (no network needed to judge the timers).
 *
 * The cases run at once (test.concurrent, up to jest's maxConcurrency of 5): each has its own
 * supervisor, wrapper script, output file and (where it has one) edge stand-in and log, and spends its
 * time waiting out its timers with at most one light ffmpeg copying at the stream's rate; one after the
 * other they took 40 s on a loaded 2-core machine, mostly the back-off case's 15 s and two 8 s waits.
 */
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { DestinationSupervisor } from '../../src/relay/destination.supervisor.js';
import type { RelayStatus } from '../../src/store/relay.repository.js';
import { testFfmpeg, writeTestPatternFile } from '../helpers/ffmpeg.js';
import { logSink } from '../helpers/log-sink.js';
import { waitFor } from '../helpers/service.js';

let dir: string;
let input: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'syndicast-sup-'));
  input = join(dir, 'pattern.flv');
  writeTestPatternFile(input, { seconds: 12, videoBitrate: '800k' });
}, 60_000);

/** ffmpeg that takes `delaySec` before it even starts (as under heavy CPU load). */
function slowFfmpeg(name: string, delaySec: number, execFfmpeg = true): string {
  const path = join(dir, name);
  // `exec` each step: the pid the supervisor kills is the one that runs (no orphaned sleep).
  writeFileSync(path, execFfmpeg ? `#!/bin/sh\nsleep ${delaySec}\nexec '${testFfmpeg()}' "$@"\n` : `#!/bin/sh\nexec sleep ${delaySec}\n`);
  chmodSync(path, 0o755);
  return path;
}

function supervise(ffmpeg: string, output: string, stallMs: number, startTimeoutMs: number): { sup: DestinationSupervisor; states: RelayStatus[] } {
  const states: RelayStatus[] = [];
  const sup = new DestinationSupervisor(
    { input, output, secrets: [] },
    {
      ffmpeg,
      log: pino({ level: 'silent' }),
      stallMs,
      startTimeoutMs,
      realtimeInput: true,
      mayStart: async () => true,
      onStateChange: (s) => states.push(s),
      backoffBaseMs: 200,
      backoffCapMs: 400,
    },
  );
  return { sup, states };
}

test.concurrent('an ffmpeg that needs longer than RELAY_STALL_MS to start is not killed before its first byte', async () => {
  const out = join(dir, 'slow.flv');
  const { sup, states } = supervise(slowFfmpeg('slow.sh', 3), out, 1000, 15_000);
  sup.start();
  try {
    await waitFor(async () => sup.status.state === 'sending', 20_000);
    expect(sup.status.restarts).toBe(0);
    expect(states.map((s) => s.state)).not.toContain('retrying');
    expect(statSync(out).size).toBeGreaterThan(0);
  } finally {
    await sup.stop();
  }
}, 40_000);

test.concurrent('an ffmpeg that never produces anything is restarted after the start-up allowance, saying so', async () => {
  const { sup } = supervise(slowFfmpeg('never.sh', 600, false), join(dir, 'never.flv'), 1000, 2500);
  sup.start();
  const startedAt = Date.now();
  const pid = await waitFor(async () => sup.pid, 5_000);
  try {
    await waitFor(async () => sup.status.state === 'retrying', 10_000);
    // Not at the stall timeout (1 s): at the start-up allowance (2.5 s).
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(2500);
    expect(sup.status.lastError).toMatch(/no data within the start-up allowance \(3 s\)/);
    expect(sup.status.restarts).toBe(1);
    let gone = false;
    try {
      process.kill(pid, 0);
    } catch {
      gone = true;
    }
    expect(gone).toBe(true);
  } finally {
    await sup.stop();
  }
}, 30_000);

/**
 * Found 2026-12-06 (e2e relay.pull): ffmpeg writes its FLV header (390 bytes: the file header and the
 * stream's metadata) once its input is probed, and its first media only once every stream has a packet
 * through (`-max_interleave_delta 0`) and the video's first keyframe came (a copy starts at one; the one
 * its probing read is not copied): a pull's first second carries one stream only, an encoder's GOP can
 * be seconds long. The supervisor took the header's bytes for media, so such a run, taking its input in
 * all along (its stream time, `out_time`, growing), was restarted as "no data for …" at the stall time.
 * Until media is out, the stream time growing is the run's progress; a run whose stream time stands
 * still too is stalled as before. Stand-ins for ffmpeg report the header and a stream time that grows,
 * or not.
 */
function headerOnly(name: string, growing: boolean): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\ni=0\nwhile :; do ${growing ? 'i=$((i + 1)); ' : ''}printf "total_size=390\\nout_time_us=%d00000\\nprogress=continue\\n" $i; sleep 0.25; done\n`);
  chmodSync(path, 0o755);
  return path;
}

test.concurrent('a run that wrote only the FLV header while its stream time grows is not stalled; one whose stream time stands still is', async () => {
  const moving = supervise(headerOnly('header-moving.sh', true), join(dir, 'header-moving.flv'), 1000, 30_000);
  const frozen = supervise(headerOnly('header-frozen.sh', false), join(dir, 'header-frozen.flv'), 1000, 30_000);
  moving.sup.start();
  frozen.sup.start();
  try {
    const pid = await waitFor(async () => moving.sup.pid, 5_000);
    await waitFor(async () => frozen.sup.status.state === 'retrying', 10_000);
    await new Promise((r) => setTimeout(r, 2500)); // 3.5 times the stall time in all
    expect({ moving: { restarts: moving.sup.status.restarts, samePid: moving.sup.pid === pid }, frozen: frozen.sup.status.lastError }).toEqual({ moving: { restarts: 0, samePid: true }, frozen: expect.stringMatching(/no data for 1 s/) });
  } finally {
    await Promise.all([moving.sup.stop(), frozen.sup.stop()]);
  }
}, 30_000);

/**
 * From the review of the rule above: an input one of whose streams never comes through (an audio
 * sequence header and no audio; a video without a keyframe) keeps ffmpeg's stream time growing while it
 * buffers without end and sends nothing but the header. Past the start-up allowance only bytes count.
 */
test.concurrent("a run with only the header out is restarted once the start-up allowance is over, though its stream time grows", async () => {
  const capped = supervise(headerOnly('header-capped.sh', true), join(dir, 'header-capped.flv'), 1000, 2000);
  capped.sup.start();
  try {
    await waitFor(async () => capped.sup.status.state === 'retrying', 20_000);
    expect(capped.sup.status.lastError).toMatch(/only the stream's header out after the start-up allowance \(2 s\)/);
  } finally {
    await capped.sup.stop();
  }
}, 30_000);

/**
 * Found running the relay by hand: a destination waiting for the show's stream reports `idle` with
 * `lastError` "waiting for the show's stream (nothing is publishing to its ingest)" (written by the relay
 * service); when the encoder began publishing, the destination went `connecting` with that line still
 * its lastError, until its first byte out — up to the start-up allowance on a slow platform ingest.
 */
test.concurrent('a reader whose source shows up is connecting without the idle wait\'s lastError', async () => {
  const states: RelayStatus[] = [];
  const sup = new DestinationSupervisor(
    { input, output: join(dir, 'wait.flv'), secrets: [] },
    { ffmpeg: slowFfmpeg('wait.sh', 600, false), log: pino({ level: 'silent' }), stallMs: 1000, waitForInput: true, mayStart: async () => true, onStateChange: (s) => states.push(s) },
  );
  sup.start();
  try {
    await waitFor(async () => sup.pid, 5_000);
    expect(sup.status.state).toBe('idle');
    sup.status.lastError = "waiting for the show's stream (nothing is publishing to its ingest)"; // as RelayService.waiting() does
    sup.setSourceKnown(true);
    expect({ state: sup.status.state, lastError: sup.status.lastError, reported: states.at(-1)?.lastError }).toEqual({ state: 'connecting', lastError: null, reported: null });
  } finally {
    await sup.stop();
  }
}, 20_000);

/**
 * ffmpeg that fails at once (exit 1) on every start but those in `runs`: start n runs ffmpeg for
 * `runs[n]` seconds (SIGKILLed then by `timeout`, a drop however far it got).
 */
function ffmpegRunningOnly(name: string, runs: Record<number, number>): string {
  const path = join(dir, name);
  const count = join(dir, `${name}.count`);
  const cases = Object.entries(runs)
    .map(([n, sec]) => `  ${n}) exec timeout -s KILL ${sec} '${testFfmpeg()}' -y "$@" ;;\n`)
    .join('');
  writeFileSync(path, `#!/bin/sh\nn=$(cat '${count}' 2>/dev/null || echo 0)\nn=$((n + 1))\necho $n > '${count}'\ncase $n in\n${cases}  *) exit 1 ;;\nesac\n`);
  chmodSync(path, 0o755);
  return path;
}

test.concurrent('the restart back-off starts over only after a run that sent for 5 s: a short sending run keeps it growing, a stable run resets it', async () => {
  // Starts 1-3 fail, 4 sends for at most 4 s, 5 fails, 6 sends for 8 s, then every start fails. The
  // back-off (base 100 ms, doubling) is read from each drop's log line: the nth failure in a row waits
  // between half of 100·2^(n-1) ms and all of it.
  const { log, lines } = logSink<{ msg: string; delayMs: number }>();
  const states: RelayStatus[] = [];
  const sup = new DestinationSupervisor(
    { input, output: join(dir, 'backoff.flv'), secrets: [] },
    {
      ffmpeg: ffmpegRunningOnly('backoff.sh', { 4: 4, 6: 8 }),
      log,
      stallMs: 2000,
      startTimeoutMs: 20_000,
      realtimeInput: true,
      mayStart: async () => true,
      onStateChange: (s) => states.push(s),
      backoffBaseMs: 100,
      backoffCapMs: 60_000,
    },
  );
  const drops = (): number[] => lines.filter((l) => l.msg === 'relay destination dropped; reconnecting').map((l) => l.delayMs);
  sup.start();
  try {
    await waitFor(async () => drops().length >= 6, 60_000);
  } finally {
    await sup.stop();
  }
  // Both runs that ran ffmpeg got to `sending` (the first within its 4 s).
  expect(states.filter((s) => s.state === 'sending').map((s) => s.restarts)).toEqual([3, 5]);
  const [, , , afterShort, , afterStable] = drops();
  // The 4 s run was no stable run: its drop is the 4th failure in a row (400-800 ms), not a first.
  expect(afterShort).toBeGreaterThanOrEqual(400);
  // The 8 s run was (past 5 s sending): its drop waits as a first failure (50-100 ms), not a 6th (1.6-3.2 s).
  expect(afterStable).toBeLessThanOrEqual(100);
}, 90_000);

/** The edge's stand-in for a reader that waits on it: it accepts and sends nothing until `publish()`, then the whole input file. */
async function heldEdge(): Promise<{ url: string; publish(): void; close(): Promise<void> }> {
  const sockets: Socket[] = [];
  let published = false;
  const flv = readFileSync(input);
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    sockets.push(socket);
    if (published) socket.write(flv);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`,
    publish: () => {
      published = true;
      for (const s of sockets) s.write(flv);
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A reader of `url` (an edge's stream) with a 4 s start-up allowance; it waits for the publish. */
function edgeReader(url: string, output: string): { sup: DestinationSupervisor; states: RelayStatus[] } {
  const states: RelayStatus[] = [];
  const sup = new DestinationSupervisor(
    { input: url, output: join(dir, output), secrets: [] },
    {
      ffmpeg: testFfmpeg(),
      log: pino({ level: 'silent' }),
      stallMs: 2000,
      startTimeoutMs: 4000,
      waitForInput: true,
      realtimeInput: true,
      inputArgs: ['-f', 'flv'],
      mayStart: async () => true,
      onStateChange: (s) => states.push(s),
      backoffBaseMs: 600_000,
      backoffCapMs: 600_000,
    },
  );
  return { sup, states };
}

/**
 * A reader held up longer than its allowance (4 s) by `hold` (before its publish), freed by `free`,
 * then published to past a watchdog tick (1 s) later: it must reach `sending` with no restart. A run
 * judged from its start would be restarted in that second.
 */
async function sendsAfterWait(output: string, hold: (sup: DestinationSupervisor) => void, free: (sup: DestinationSupervisor) => void): Promise<void> {
  const e = await heldEdge();
  const { sup } = edgeReader(e.url, output);
  hold(sup);
  sup.start();
  try {
    await waitFor(async () => sup.pid, 10_000);
    await new Promise((r) => setTimeout(r, 5000));
    free(sup);
    await new Promise((r) => setTimeout(r, 1500));
    e.publish();
    await waitFor(async () => sup.status.state === 'sending' || sup.status.restarts > 0, 20_000);
    expect({ restarts: sup.status.restarts, lastError: sup.status.lastError }).toEqual({ restarts: 0, lastError: null });
  } finally {
    await sup.stop();
    await e.close();
  }
}

describe('the start-up allowance of a reader that waited', () => {
  // Waiting for the publish longer than the allowance: no stall, the publish has not begun.
  test.concurrent('counts from the moment its source became known, not from its run start', () =>
    sendsAfterWait('known-late.flv', () => undefined, (sup) => sup.setSourceKnown(true)), 40_000);

  // The show's stream stalled at its edge for longer than the allowance: not this run's silence.
  test.concurrent('counts from the end of a stall of its source (the encoder connected but sending nothing), not from its run start', () =>
    sendsAfterWait(
      'stalled-first.flv',
      (sup) => {
        sup.setSourceKnown(true);
        sup.setInputStalled(true);
      },
      (sup) => sup.setInputStalled(false),
    ), 40_000);
});

test.concurrent("a destination whose fence says no (the lease is not this process's) starts no ffmpeg and stays idle", async () => {
  let asked = 0;
  const states: RelayStatus[] = [];
  const sup = new DestinationSupervisor(
    { input, output: join(dir, 'fenced.flv'), secrets: [] },
    {
      ffmpeg: testFfmpeg(),
      log: pino({ level: 'silent' }),
      stallMs: 1000,
      startTimeoutMs: 5000,
      realtimeInput: true,
      mayStart: async () => {
        asked += 1;
        return false;
      },
      onStateChange: (s) => states.push(s),
    },
  );
  sup.start();
  try {
    await waitFor(async () => asked >= 1, 5_000);
    // Time for a start to have spawned (and reported) had the fence been passed.
    await new Promise((r) => setTimeout(r, 1500));
    expect({ pid: sup.pid, running: sup.running, state: sup.status.state, asked }).toEqual({ pid: undefined, running: false, state: 'idle', asked: 1 });
    expect(states.map((s) => s.state)).toEqual([]);
  } finally {
    await sup.stop();
  }
}, 20_000);

/**
 * Found attacking the relay: an encoder whose timestamps jumped an hour ahead had every destination
 * that kept sending ~800 kbps report `bitrateKbps` 2 for the rest of its run: it was ffmpeg's own
 * `bitrate=`, the run's bytes over the stream's time. Now it is the bytes written over the last seconds
 * of wall-clock time. The stand-in ffmpeg writes `-progress` as ffmpeg did then: 100 kB every 0.5 s
 * (1,600 kbps), stream time an hour on, `bitrate=` 0.2 kbit/s.
 */
test.concurrent('bitrateKbps is what the run writes per wall-clock second, whatever the stream timestamps say', async () => {
  const path = join(dir, 'jumped.sh');
  writeFileSync(path, '#!/bin/sh\ni=0\nwhile :; do i=$((i+1)); b=$((i*100000)); printf "total_size=%s\\nout_time_us=%s\\nbitrate=0.2kbits/s\\nprogress=continue\\n" $b $((3600000000+i*500000)); sleep 0.5; done\n');
  chmodSync(path, 0o755);
  const { sup } = supervise(path, join(dir, 'jumped.flv'), 10_000, 15_000);
  sup.start();
  try {
    await waitFor(async () => sup.status.state === 'sending', 10_000);
    await new Promise((r) => setTimeout(r, 3000));
    expect(sup.status.bitrateKbps).toBeGreaterThan(1000);
    expect(sup.status.bitrateKbps).toBeLessThan(2500);
  } finally {
    await sup.stop();
  }
}, 30_000);
