/**
 * Supervision of one relay destination (issue 10 item 3): one ffmpeg at a time, restarted with
 * backoff when it exits or stalls, its progress turned into the mirror's `relay` status. Each
 * destination has its own supervisor and its own process, so one failing destination never
 * disturbs the others.
 */
import type { Logger } from 'pino';
import { backoffMs } from '../mirror/backoff.js';
import type { RelayState, RelayStatus } from '../store/relay.repository.js';
import { copyArgs, startFfmpeg, type FfmpegRun } from './ffmpeg.process.js';
import { maskSecrets } from './mask.js';
import { drainedBytes, heldBytes, sendQueuesOf, waitsOnInput } from './send-queue.js';
import { runQueueWaitReader, type StartGate, type StartSlot } from './start-gate.js';

export interface DestinationSpec {
  /** Where the stream is read (the edge, `rtmp://…/live/{show key}`). */
  input: string;
  /** Where it is pushed (`{ingest.url}/{ingest.streamKey}`, host already checked by the SSRF guard). */
  output: string;
  /**
   * Which destination `output` is: the push URL as given, before its host was resolved (default
   * `output`). The checked address in `output` may differ from one DNS answer to the next (round-robin,
   * geo DNS) for the same destination, which is no reason to restart its push (sameAs, readdress).
   */
  destination?: string;
  /** Strings that must never reach a log (both stream keys). */
  secrets: string[];
}

export interface SupervisorOptions {
  ffmpeg: string;
  log: Logger;
  /** No progress for this long, once data flowed: kill and restart (RELAY_STALL_MS). */
  stallMs: number;
  /**
   * Start-up allowance (RELAY_START_TIMEOUT_MS): how long a run may take to its first byte out
   * (process start, input probing, output handshake), counted from its start or from the moment its
   * source became known. The stall timer is armed only after the first byte; on a loaded machine
   * ffmpeg alone can need longer than `stallMs` to start. Default: 5 × stallMs.
   */
  startTimeoutMs?: number;
  /** Called when `state` changes (not for byte counts). */
  onStateChange: (status: RelayStatus) => void;
  /** The fence: checked right before every ffmpeg start; false = this process must not push. */
  mayStart: () => Promise<boolean>;
  /**
   * The input is our edge: start reading before the publish begins and wait for it (no input
   * timeout); a clean end of the input is the publish ending, not a failure.
   */
  waitForInput?: boolean;
  /** ffmpeg options for the input (before `-i`), e.g. the HLS pull's `-f hls -protocol_whitelist http,tcp`. */
  inputArgs?: string[];
  /** Read the input at its native rate (`-re`: an HLS playlist that is not live would be read at once). */
  realtimeInput?: boolean;
  /** This run makes the show's publish (a pull into the edge): its starts go ahead as a publishing show's (start-gate.ts). */
  publishes?: boolean;
  /** Backoff base and cap, ms ("equal jitter" per destination, between half the step and the step: restarts of many destinations spread out). */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** The process-wide limit on ffmpeg starts in flight (src/relay/start-gate.ts); none: start at once. */
  startGate?: StartGate;
  /** Reads a child's run-queue wait, ns (default /proc/{pid}/schedstat); tests may replace it. */
  runQueueWaitNs?: (pid: number) => number | undefined;
  /** A silent child's TCP send queues, inode → bytes not yet acknowledged (default: /proc); tests may replace it. */
  sendQueues?: (pid: number) => Map<number, number> | undefined;
  /**
   * The readers of this process's edge, by input (src/relay/relay.service.ts: one for every
   * destination of the process). With it, a run that is silent while it waits on its input (it sleeps
   * with its input socket read empty and nothing queued for its destination) is restarted at the
   * stall time only if another reader of the same input got data meanwhile (the edge serves the show,
   * just not this reader); if none did, the input is silent for all of them (a starved machine: the
   * edge's thread, the encoder), which a restart cannot mend, and the run is judged against the hard
   * limit. Without it (a pull from an outside source) a silence is judged as before.
   */
  inputPeers?: InputPeers;
  /**
   * When the publish `input` reads (a show's stream on this process's edge) last sent the edge data,
   * by the edge's clock (src/relay/ingest.edge.ts `publisherDataAt`; undefined: not known here, e.g.
   * another process's edge). The edge passes what it gets on to the stream's readers at once, so a run
   * that waits on its input while the publisher sent data after its silence began (and long enough
   * ago to have come through) is one the edge does not serve: the stall time applies, whether or not
   * the show has other readers. Only with `inputPeers`.
   */
  publisherDataAt?: (input: string) => number | undefined;
  /** Whether a silent child waits on its input socket (default: /proc, see waitsOnInput); tests may replace it. */
  waitsOnInput?: (pid: number, inputPort: number) => boolean | undefined;
  /**
   * How long after a reader's last progress the edge's notice that the show's publisher stalled
   * (setInputStalled) may take to reach this supervisor: the edge's own delay and the relay pass
   * that reads it, with room (relay.service.ts). Until then a silence of a run that waits on its
   * input may be the publisher's, which the notice will say: such a run is not restarted at the stall
   * time before this much silence, unless the publisher is known to have sent the edge data since
   * (`publisherDataAt`). The peers cannot settle it: readers that got the same last bytes report
   * them up to a second or more apart on a loaded machine, as far apart as half a short stall time.
   * Only with `inputPeers`; default 0 (none).
   */
  stallNoticeMs?: number;
}

/**
 * The readers of one input (a show's stream on the edge) in this process, and when each last got data
 * through: a reader's silence is its own only while another reader of the same input is being served.
 */
export interface InputPeer {
  /** When the reader's run last got data through. */
  dataAt: number;
  /** When its current run first got data through (0: none yet). */
  firstDataAt: number;
}

export class InputPeers {
  private readonly byInput = new Map<string, Set<InputPeer>>();

  join(input: string, member: InputPeer): void {
    let set = this.byInput.get(input);
    if (!set) this.byInput.set(input, (set = new Set()));
    set.add(member);
  }

  leave(input: string, member: InputPeer): void {
    const set = this.byInput.get(input);
    if (!set) return;
    set.delete(member);
    if (set.size === 0) this.byInput.delete(input);
  }

  /**
   * The latest moment another reader of `input` got data through (0: none has, or none reads it),
   * counting only readers whose current run was already getting data at `servedBy`. A run that
   * connects later is first sent the edge's GOP cache (ingest.edge.ts `gop_cache`): seconds of the
   * show it gets at once even while nothing new comes in, which is no proof that the input flows.
   */
  othersDataAt(input: string, member: InputPeer, servedBy = Infinity): number {
    let at = 0;
    for (const m of this.byInput.get(input) ?? []) {
      if (m !== member && m.firstDataAt > 0 && m.firstDataAt <= servedBy && m.dataAt > at) at = m.dataAt;
    }
    return at;
  }
}

/** The TCP port an input URL connects to (the edge's, for a reader); undefined when it names none. */
export function inputPortOf(input: string): number | undefined {
  try {
    const u = new URL(input);
    if (u.port) return Number(u.port);
    return u.protocol === 'rtmp:' ? 1935 : u.protocol === 'rtmps:' ? 443 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Which limits a run that is silent while sending is judged against, by where it waits:
 * - `destination`: bytes sit in its send queue (the receiver takes them slowly or not at all): the hard
 *   limit, with any drain starting the silence over (see RECEIVER_PROBE_AFTER_MS);
 * - `input`: it waits on its input, no other reader of that input was served during its silence and
 *   the show's publisher (where known: `publisherDataAt`) sent the edge nothing since: the input is
 *   silent for everyone (the machine starved the edge or the encoder), not this run: the hard limit;
 * - `run`: anything else (ffmpeg itself stopped or hung, the edge no longer serving this reader while
 *   it serves the others or while the publisher sends): the stall time, less the time it was starved
 *   of CPU (stallVerdict), and the hard limit whatever the starvation. `noticeMs`: a run that waits on
 *   its input with no word from the publisher gets at least this (SupervisorOptions.stallNoticeMs).
 */
export function silenceLimits(x: { stallMs: number; blockedOnReceiver: boolean; inputSilentForAll: boolean; noticeMs?: number }): { cause: 'destination' | 'input' | 'run'; limitMs: number; hardLimitMs: number } {
  const hard = x.stallMs * STARVED_LIMIT_FACTOR;
  if (x.blockedOnReceiver) return { cause: 'destination', limitMs: hard, hardLimitMs: hard };
  if (x.inputSilentForAll) return { cause: 'input', limitMs: hard, hardLimitMs: hard };
  return { cause: 'run', limitMs: Math.min(hard, Math.max(x.stallMs, x.noticeMs ?? 0)), hardLimitMs: hard };
}

/**
 * Whether a silent run is stalled. `silentMs` is the wall time without progress; `starvedMs` the
 * part of it in which the run could not have made progress for want of CPU: ffmpeg waiting on a run
 * queue, or this process's event loop not running (ffmpeg's progress reports then sit unread in the
 * pipe). Only the rest counts against `limitMs`, so a saturated machine does not get its relays
 * restarted (each restart another costly start-up, the restart storm); a run silent for
 * `hardLimitMs` of wall time is restarted whatever the reason.
 */
export function stallVerdict(x: { silentMs: number; starvedMs: number; limitMs: number; hardLimitMs: number }): 'ok' | 'starved' | 'stalled' {
  if (x.silentMs <= x.limitMs) return 'ok';
  if (x.silentMs > x.hardLimitMs) return 'stalled';
  return x.silentMs - Math.min(x.starvedMs, x.silentMs) > x.limitMs ? 'stalled' : 'starved';
}

/** A starved run is still restarted after this many times its limit of wall-clock silence. */
const STARVED_LIMIT_FACTOR = 4;

/**
 * ffmpeg's own output write timeout (µs) for a stall time: the watchdog's hard limit, so it only backs
 * the watchdog up (a receiver that takes nothing at all) and a slow destination is judged by the
 * watchdog, which can tell. The relay benchmark gives its bare ffmpeg the same.
 */
export function outputTimeoutUs(stallMs: number): number {
  return stallMs * STARVED_LIMIT_FACTOR * 1000;
}
/**
 * A sending run silent for this long has its TCP send queues read on every watchdog tick (never a
 * healthy run: ffmpeg reports progress every 0.5 s while the push moves). Bytes held in a queue mean
 * ffmpeg waits on its destination, not on its input: a destination that reads slowly keeps the queue
 * full and makes ffmpeg wait for seconds before each write (Linux reports a socket writable only once
 * a third of its send buffer is free; measured 4–5 s between writes at 40–60 KB/s, minutes at
 * 12 KB/s), so such a run is judged against the hard limit (STARVED_LIMIT_FACTOR × the stall time)
 * instead of the stall time, and any shrink of the queue (the receiver took bytes) starts its silence
 * over. A receiver that takes nothing for the hard limit is restarted; ffmpeg's own output write
 * timeout is set to the same, only as a backstop.
 */
const RECEIVER_PROBE_AFTER_MS = 1500;
/**
 * The publisher's data proves that the edge serves the show only from this long after a reader's last
 * progress on (the edge counts what it received every 0.5 s, ffmpeg reports every 0.5 s), and only
 * once it is this old (time to come through to the reader and show in its progress).
 */
const PUBLISHER_MARGIN_MS = 1500;
/** Bytes a send queue must hold (or shrink by) to count: the input socket only carries RTMP acks out. */
const HELD_MIN_BYTES = 1024;

/** Logged once per run whose silence the stall time alone would have ended while the edge's stall notice may yet come (SupervisorOptions.stallNoticeMs). */
export const RELAY_AWAITS_STALL_NOTICE = "relay destination silent waiting on its input, which the show's publisher may have stopped sending (the edge's notice may yet come); not restarting it (yet)";

/** `lastError` while the show's own stream is stalled at its edge (the destination is not at fault). */
export const INPUT_STALLED = "source: the show's stream stalled (its encoder is connected but sends nothing)";

/**
 * Bytes of FLV header and metadata (ffmpeg's 390 for the relay's streams): progress past this means
 * media is flowing; below it, the run's stream time growing is its progress.
 */
const SENDING_THRESHOLD_BYTES = 4096;
/**
 * `bitrateKbps` is what the run wrote over about this much wall-clock time (its latest progress reports).
 * ffmpeg's own `bitrate=` is the run's bytes over the stream's time (out_time): an encoder whose
 * timestamps jumped ahead (an hour, found attacking the relay) had a destination that sent 800 kbps
 * report 2 kbps for the rest of its run, and one that jumped back reported many times what it sent.
 */
const RATE_WINDOW_MS = 5000;
/** After the publish ended, how soon a reader waits on the edge again. */
const SOURCE_END_RELAUNCH_MS = 250;
/** A run that was sending this long resets the backoff. */
const HEALTHY_MS = 5_000;
/** stop(): SIGTERM (ffmpeg closes the FLV stream cleanly), SIGKILL after this long. */
export const STOP_GRACE_MS = 1_000;
/**
 * Longest wait between two restarts of one destination (each wait is drawn between half the step and
 * the step): a destination that keeps failing costs one ffmpeg start-up per wait, so the cap bounds
 * what a dead platform ingest costs; at 15 s (was 4 s) 100 failing destinations make 6.7–13.3 starts/s
 * (mean ≈ 9), which the start gate then spreads out.
 */
const DEFAULT_BACKOFF_CAP_MS = 15_000;

export class DestinationSupervisor {
  private run: FfmpegRun | undefined;
  private runStartedAt = 0;
  private runBytes = 0;
  /** The run's progress reports (wall-clock time, bytes written) over the last RATE_WINDOW_MS: its bitrate. */
  private rateSamples: { at: number; bytes: number }[] = [];
  private bytesBefore = 0;
  private lastProgressAt = 0;
  /** When the start-up allowance of the current run began (run start, or the source showing up). */
  private startClock = 0;
  private lastProgressBytes = -1;
  /** The run's stream time (ffmpeg's out_time, µs) at its last progress: progress while nothing but the FLV header is out. */
  private lastOutTimeUs = 0;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Starved time (run-queue wait, event-loop lag) since the last progress or start-up clock reset, ms. */
  private starvedMs = 0;
  private slot: StartSlot | undefined;
  private spec: DestinationSpec;
  /** This reader in `inputPeers`: when its run last got data through. */
  private readonly peer: InputPeer = { dataAt: 0, firstDataAt: 0 };
  private joined = false;
  /** start() was called: a supervisor made and never started (a destination waiting, no input) is not dormant. */
  private started = false;
  readonly status: RelayStatus;

  constructor(
    spec: DestinationSpec,
    private readonly opts: SupervisorOptions,
    initial?: RelayStatus | null,
  ) {
    this.spec = spec;
    this.status = {
      state: 'idle',
      bitrateKbps: 0,
      bytesSent: initial?.bytesSent ?? 0,
      since: new Date().toISOString(),
      restarts: initial?.restarts ?? 0,
      lastError: initial?.lastError ?? null,
    };
    this.bytesBefore = this.status.bytesSent;
  }

  get pid(): number | undefined {
    return this.run?.pid;
  }

  get running(): boolean {
    return this.run !== undefined;
  }

  /** stop() or fail() was called: this supervisor starts nothing any more (a new one takes over). */
  get halted(): boolean {
    return this.stopped;
  }

  /** Same destination? (a changed ingest or source restarts the supervisor; another address of the same one does not) */
  sameAs(spec: DestinationSpec): boolean {
    return spec.input === this.spec.input && (spec.destination ?? spec.output) === (this.spec.destination ?? this.spec.output);
  }

  /**
   * The same destination (sameAs) at the address its name resolves to now: the next start connects
   * there; the run in progress keeps its connection.
   */
  readdress(spec: DestinationSpec): void {
    if (this.sameAs(spec)) this.spec = { ...this.spec, output: spec.output };
  }

  start(): void {
    this.stopped = false;
    this.started = true;
    if (this.opts.inputPeers && this.spec.input && !this.joined) {
      this.opts.inputPeers.join(this.spec.input, this.peer);
      this.joined = true;
    }
    this.relaunch();
  }

  private leavePeers(): void {
    if (!this.joined) return;
    this.opts.inputPeers?.leave(this.spec.input, this.peer);
    this.joined = false;
  }

  /**
   * Started, yet neither running, starting, nor waiting to start again: a start the fence refused (it
   * said no, or could not be asked: Redis down) stays so. The relay's pass starts such a supervisor
   * again (it runs only for shows whose lease it holds): left alone, a refusal just after a Redis outage
   * (the lease lapsed while Redis was down; the renewal that takes it back comes a moment later) kept
   * the destination idle for good, and the platform got no video once the encoder was back.
   */
  get dormant(): boolean {
    return this.started && !this.stopped && !this.run && !this.launching && this.timer === undefined;
  }

  /** launch() in the background: whatever it throws is logged, never an unhandled rejection. */
  private relaunch(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.launch().catch((err: unknown) => {
      this.slot?.release();
      this.slot = undefined;
      this.opts.log.error({ err: maskSecrets((err as Error)?.message ?? String(err), this.spec.secrets) }, 'relay destination could not be started');
    });
  }

  private setState(state: RelayState, lastError?: string | null): void {
    if (lastError !== undefined) this.status.lastError = lastError;
    if (state === this.status.state && lastError === undefined) return;
    const changed = state !== this.status.state;
    this.status.state = state;
    if (changed) this.status.since = new Date().toISOString();
    if (state !== 'sending') this.status.bitrateKbps = 0;
    this.opts.onStateChange({ ...this.status });
  }

  /** A destination that cannot be started at all (refused address): reported, never retried here. */
  fail(message: string): void {
    this.stopped = true;
    this.leavePeers();
    this.setState('failed', maskSecrets(message, this.spec.secrets));
  }

  /**
   * Whether the show's stream is known to be publishing. A reader started before it is (an idle
   * player on the edge, which node-media-server starts feeding from the publish's first packet, so
   * no second of the show is lost to start-up) reports `idle` until data flows.
   */
  sourceKnown = false;

  /** The source showed up (or went away) while ffmpeg waits for it. */
  setSourceKnown(known: boolean): void {
    if (known && !this.sourceKnown) {
      this.startClock = Date.now(); // the start-up allowance starts now
      this.starvedMs = 0;
    }
    this.sourceKnown = known;
    if (!this.run || this.gotProgress) return;
    // What it waited for is here: the idle wait's `lastError` ("nothing is publishing to its ingest", a
    // pull's failure) no longer holds, and stayed on the `connecting` status until the first byte went out.
    if (known && this.status.state === 'idle') this.setState('connecting', null);
    if (!known && this.status.state === 'connecting') this.setState('idle');
  }

  /**
   * The show's stream is stalled at its edge (the encoder is connected but sends nothing): a silent
   * run then waits on its input, not on its destination, so the watchdog neither restarts it (each
   * restart a new publish on the platform) nor blames the destination; `lastError` says the source stalled.
   */
  private inputStalled = false;

  setInputStalled(stalled: boolean): void {
    if (stalled === this.inputStalled) return;
    this.inputStalled = stalled;
    if (stalled) {
      this.setState(this.status.state, INPUT_STALLED);
    } else {
      // Its silence is over: the stall timer counts from now, not from the last byte before the stall.
      this.lastProgressAt = Date.now();
      this.starvedMs = 0;
      if (this.status.lastError === INPUT_STALLED) this.setState(this.status.state, null);
    }
  }

  private gotProgress = false;

  private launching = false;

  private async launch(): Promise<void> {
    if (this.stopped || this.run || this.launching) return;
    this.launching = true;
    let slot: StartSlot | undefined;
    try {
      // Wait for a start slot first, then check the fence right before the spawn (the lease may
      // have moved while this start waited its turn).
      // A reader whose show publishes goes ahead of readers armed for a publish not begun (start-gate.ts).
      slot = await this.opts.startGate?.acquire(this.failures > 0 ? 'retry' : 'first', () => this.sourceKnown || this.opts.publishes === true);
      if (this.stopped || this.run) return slot?.release();
      let allowed: boolean;
      try {
        allowed = await this.opts.mayStart();
      } catch (err) {
        allowed = false;
        this.status.lastError = maskSecrets(`cannot check the relay lease: ${(err as Error).message}`, this.spec.secrets);
      }
      if (this.stopped || this.run || !allowed) {
        slot?.release();
        if (!this.stopped && !this.run) this.setState('idle');
        return;
      }
    } finally {
      this.launching = false;
    }
    this.slot = slot;
    this.setState(this.sourceKnown ? 'connecting' : 'idle');
    const args = copyArgs(this.spec.input, this.spec.output, {
      realtime: this.opts.realtimeInput,
      inputTimeout: !this.opts.waitForInput,
      inputArgs: this.opts.inputArgs,
      outputTimeoutUs: outputTimeoutUs(this.opts.stallMs),
    });
    this.opts.log.debug({ cmd: maskSecrets(`ffmpeg ${args.join(' ')}`, this.spec.secrets) }, 'starting ffmpeg');
    this.runStartedAt = Date.now();
    this.runBytes = 0;
    this.rateSamples = [];
    this.gotProgress = false;
    this.startClock = Date.now();
    this.lastProgressAt = Date.now();
    this.lastProgressBytes = -1;
    this.lastOutTimeUs = 0;
    this.starvedMs = 0;
    this.peer.firstDataAt = 0; // a new run: what it gets first may be the edge's GOP cache
    const startTimeoutMs = this.opts.startTimeoutMs ?? this.opts.stallMs * 5;
    const run = startFfmpeg(this.opts.ffmpeg, args, this.spec.secrets, (p) => {
      slot?.release(); // started up: the next start may go
      // Until media is out (past ffmpeg's FLV header and metadata), the stream time growing is the
      // run's progress: the header goes out once the input is probed, the first media only once every
      // stream has a packet through (-max_interleave_delta 0) and the video's first keyframe came (a
      // copy starts at one), seconds later (a pull's first second carries one stream only; an
      // encoder's GOP can be seconds long), while the run takes its input in all along. Only within the
      // start-up allowance: an input whose streams never all come through (an audio sequence header and
      // no audio, a video without a keyframe) keeps the stream time growing while ffmpeg buffers
      // without end and sends nothing; past the allowance bytes alone count (stalled at the stall time).
      const inHeader = p.totalBytes <= SENDING_THRESHOLD_BYTES && p.outTimeUs > this.lastOutTimeUs && Date.now() - this.runStartedAt < startTimeoutMs;
      if (p.totalBytes > this.lastProgressBytes || inHeader) {
        this.lastProgressBytes = Math.max(this.lastProgressBytes, p.totalBytes);
        this.lastOutTimeUs = Math.max(this.lastOutTimeUs, p.outTimeUs);
        this.lastProgressAt = Date.now();
        this.peer.dataAt = this.lastProgressAt;
        if (this.peer.firstDataAt === 0) this.peer.firstDataAt = this.lastProgressAt;
        this.starvedMs = 0;
      }
      this.gotProgress = true;
      this.runBytes = p.totalBytes;
      this.status.bytesSent = this.bytesBefore + p.totalBytes;
      const now = Date.now();
      this.rateSamples.push({ at: now, bytes: p.totalBytes });
      while (this.rateSamples.length > 2 && now - this.rateSamples[1]!.at >= RATE_WINDOW_MS) this.rateSamples.shift();
      const from = this.rateSamples[0]!;
      // bytes × 8 / ms = kbit/s; ffmpeg's own figure until a second of reports is there to measure.
      this.status.bitrateKbps = now - from.at >= 1000 ? Math.round(((p.totalBytes - from.bytes) * 8) / (now - from.at)) : Math.round(p.bitrateKbps);
      if (p.totalBytes > SENDING_THRESHOLD_BYTES && p.outTimeUs > 0 && this.status.state !== 'sending') this.setState('sending', null);
      if (this.status.state === 'sending' && Date.now() - this.runStartedAt > HEALTHY_MS) this.failures = 0;
    });
    this.run = run;
    slot?.started(run.pid);
    const tickMs = Math.min(1000, this.opts.stallMs, startTimeoutMs);
    // Read every tick of every run: the child's schedstat is kept open for the run (runQueueWaitReader).
    const waitReader = this.opts.runQueueWaitNs || run.pid === undefined ? undefined : runQueueWaitReader(run.pid);
    const readWait = this.opts.runQueueWaitNs ?? (() => waitReader?.read());
    let lastTick = Date.now();
    let lastWaitNs = run.pid === undefined ? undefined : readWait(run.pid);
    let starvedLogged = false;
    let slowLogged = false;
    let unreadableLogged = false;
    let deferred = false;
    const readQueues = this.opts.sendQueues ?? sendQueuesOf;
    let queuesBefore: Map<number, number> | undefined;
    let queuesAt = 0;
    let blockedOnReceiver = false;
    const peers = this.opts.inputPeers;
    const inputPort = peers ? inputPortOf(this.spec.input) : undefined;
    const readInputWait = this.opts.waitsOnInput ?? ((pid: number, port: number) => waitsOnInput(pid, port, HELD_MIN_BYTES));
    let inputLogged = false;
    let noticeLogged = false;
    // The publisher's first data seen after this run's current silence began (0: none yet), and the
    // silence (its last progress) it was seen for.
    // What is known of the current silence (the one since lastProgressAt = silenceFor): when the
    // show's publisher sent the edge data after it began (0: not seen), and the last definite
    // "waiting on its input?" answer (undefined samples keep it; undefined while none came, which
    // counts as waiting: a starved machine can find ffmpeg runnable at every sample of a short stall
    // time, and a run whose silence cannot be told from the input's is not restarted at the stall
    // time for it — a stopped or busy run gives a definite "no").
    let silenceFor = -1;
    let publisherAfter = 0;
    let inputWaitSeen: boolean | undefined;
    this.watchdog = setInterval(() => {
      const now = Date.now();
      // Time in which this run could not progress for want of CPU: ffmpeg waiting on a run queue, and
      // this event loop running late. Of a late tick only the lateness is forgiven (the time the loop
      // certainly did not run), not the whole interval: a loop held up ≥ 250 ms every second would
      // otherwise forgive all silence and leave a truly stalled destination to the hard limit (4× the
      // stall time). A late tick does not judge either: what ffmpeg reported while the loop was
      // blocked still sits unread in the pipe (read after this timer runs); the next tick judges, once.
      const elapsed = now - lastTick;
      lastTick = now;
      const late = elapsed - tickMs > Math.max(250, tickMs / 4);
      const waitNs = run.pid === undefined ? undefined : readWait(run.pid);
      const queued = waitNs !== undefined && lastWaitNs !== undefined ? Math.max(0, (waitNs - lastWaitNs) / 1e6) : 0;
      lastWaitNs = waitNs ?? lastWaitNs;
      this.starvedMs += Math.min(elapsed, Math.max(late ? elapsed - tickMs : 0, queued));
      const defer = late && !deferred;
      deferred = defer;
      // Only once data flowed: a reader waiting for the publish to begin is not stalled.
      const waiting = !this.gotProgress && this.opts.waitForInput && !this.sourceKnown;
      if (this.inputStalled) {
        // The source sends nothing: this silence is not the run's (see setInputStalled).
        this.lastProgressAt = now;
        this.starvedMs = 0;
        if (this.lastProgressBytes <= 0) this.startClock = now;
        return;
      }
      if (waiting || this.stallReason || defer) return;
      const starting = this.lastProgressBytes <= 0; // nothing out yet: the start-up allowance applies, not the stall timer
      blockedOnReceiver = false;
      let inputSilentForAll = false;
      // Waits on its input and the publisher is not known to send: the edge's stall notice may yet come.
      let awaitsNotice = false;
      if (!starting && run.pid !== undefined && now - this.lastProgressAt > RECEIVER_PROBE_AFTER_MS) {
        // Silent while sending: waiting on its input, or on a destination that reads slowly? (Only
        // samples taken within this silence are compared.)
        const queues = readQueues(run.pid);
        if (!queues && !unreadableLogged) {
          // Not Linux /proc (or not ours to read): a slow destination cannot be told from a dead one
          // here, so it is restarted at the stall time like before.
          unreadableLogged = true;
          this.opts.log.warn({ pid: run.pid }, 'relay: cannot read the push socket send queue (/proc); a slowly reading destination will be restarted as stalled');
        }
        blockedOnReceiver = heldBytes(queues) >= HELD_MIN_BYTES;
        if (queuesBefore && queues && queuesAt >= this.lastProgressAt && drainedBytes(queuesBefore, queues, HELD_MIN_BYTES) > 0) {
          if (!slowLogged) this.opts.log.info({ pid: run.pid }, 'relay destination reads slowly (ffmpeg waits on it, its socket still drains); not a stall');
          slowLogged = true;
          this.lastProgressAt = now;
          this.starvedMs = 0;
        }
        queuesBefore = queues;
        queuesAt = now;
        if (silenceFor !== this.lastProgressAt) {
          silenceFor = this.lastProgressAt;
          publisherAfter = 0;
          inputWaitSeen = undefined;
        }
        const inputWait = !blockedOnReceiver && peers && inputPort !== undefined ? readInputWait(run.pid, inputPort) : false;
        // A sample that cannot tell (ffmpeg found runnable while its sockets are idle: woken from its
        // wait on input and queued for a CPU on a starved machine) keeps the answer before it.
        if (inputWait !== undefined) inputWaitSeen = inputWait;
        if (inputWaitSeen !== false && peers && inputPort !== undefined && !blockedOnReceiver) {
          // Waiting on its input: did the show's publisher send the edge data since this run fell
          // silent? Then the edge had it and passed it on, just not to this reader. (Under a starved
          // edge thread its count is late: the silence then passes for the input's, the safe side.)
          const sentAt = this.opts.publisherDataAt?.(this.spec.input);
          if (publisherAfter === 0 && sentAt !== undefined && sentAt > this.lastProgressAt + PUBLISHER_MARGIN_MS) publisherAfter = sentAt;
          const publisherServed = publisherAfter > 0 && now - publisherAfter >= PUBLISHER_MARGIN_MS;
          // Waiting on its input: is the edge serving the show's other readers meanwhile? Progress
          // reports come every 0.5 s at each run's own pace, so readers that got the same last bytes
          // report them up to about a second apart: only data half a stall time after this run's last
          // progress is proof that the input still flows to others; and only from a reader that was
          // served already when this one last got data: one that (re)connected since got the edge's
          // GOP cache at once, whether or not anything new came in (a reader restarting, or a new
          // destination, during a silence for all would restart every silent reader of the show).
          inputSilentForAll = !publisherServed && peers.othersDataAt(this.spec.input, this.peer, this.lastProgressAt) < this.lastProgressAt + this.opts.stallMs / 2;
          awaitsNotice = !publisherServed;
        }
      }
      const limits = silenceLimits({ stallMs: this.opts.stallMs, blockedOnReceiver, inputSilentForAll, noticeMs: awaitsNotice ? this.opts.stallNoticeMs : undefined });
      const limitMs = starting ? startTimeoutMs : limits.limitMs;
      const silentMs = now - (starting ? this.startClock : this.lastProgressAt);
      const verdict = stallVerdict({ silentMs, starvedMs: this.starvedMs, limitMs, hardLimitMs: starting ? limitMs * STARVED_LIMIT_FACTOR : limits.hardLimitMs });
      if (inputSilentForAll && !inputLogged && stallVerdict({ silentMs, starvedMs: this.starvedMs, limitMs: this.opts.stallMs, hardLimitMs: limits.hardLimitMs }) === 'stalled') {
        // Logged once per run, only where the stall time alone would have restarted it.
        inputLogged = true;
        this.opts.log.info({ pid: run.pid, silentMs, starvedMs: Math.round(this.starvedMs) }, "relay destination silent waiting on its input, which no reader of the show's stream got data from; not restarting it (yet)");
      }
      if (!starting && limits.cause === 'run' && limits.limitMs > this.opts.stallMs && !noticeLogged && stallVerdict({ silentMs, starvedMs: this.starvedMs, limitMs: this.opts.stallMs, hardLimitMs: limits.hardLimitMs }) === 'stalled') {
        // Logged once per run, only where the stall time alone would have restarted it.
        noticeLogged = true;
        this.opts.log.info({ pid: run.pid, silentMs, noticeMs: this.opts.stallNoticeMs }, RELAY_AWAITS_STALL_NOTICE);
      }
      if (verdict === 'ok') return;
      if (verdict === 'starved') {
        if (!starvedLogged) this.opts.log.info({ pid: run.pid, starvedMs: Math.round(this.starvedMs) }, 'relay destination silent while starved of CPU; not restarting it (yet)');
        starvedLogged = true;
        return;
      }
      this.stallReason = starting
        ? `no data within the start-up allowance (${Math.round(startTimeoutMs / 1000)} s)`
        : this.lastProgressBytes <= SENDING_THRESHOLD_BYTES && now - this.runStartedAt >= startTimeoutMs
          ? `only the stream's header out after the start-up allowance (${Math.round(startTimeoutMs / 1000)} s): not every stream of the input came through (no packet of one, or no keyframe)`
          : limits.cause === 'destination'
          ? `the destination took no data for ${Math.round(limitMs / 1000)} s`
          : limits.cause === 'input'
            ? `no data from the show's stream for ${Math.round(limitMs / 1000)} s (for none of its readers)`
            : `no data for ${Math.round(limitMs / 1000)} s`;
      this.opts.log.info({ pid: run.pid, reason: this.stallReason, starvedMs: Math.round(this.starvedMs) }, 'relay destination stalled; restarting');
      run.kill('SIGKILL');
    }, tickMs);
    this.watchdog.unref();
    const { code, signal, tail } = await run.exited;
    slot?.release();
    this.slot = undefined;
    clearInterval(this.watchdog);
    waitReader?.close();
    this.run = undefined;
    this.bytesBefore += this.runBytes;
    this.status.bytesSent = this.bytesBefore;
    const stalled = this.stallReason;
    this.stallReason = undefined;
    if (this.stopped) return;
    if (code === 0 && !stalled && this.opts.waitForInput) {
      // The publish ended (ffmpeg saw the end of the stream): wait for the next one, nothing failed.
      this.opts.log.debug({ restarts: this.status.restarts }, 'source ended; waiting for it to come back');
      this.setState('idle');
      this.timer = setTimeout(() => this.relaunch(), SOURCE_END_RELAUNCH_MS);
      this.timer.unref();
      return;
    }
    const reason = stalled ?? (tail || (signal ? `ffmpeg killed by ${signal}` : `ffmpeg exited with code ${String(code)}`));
    this.failures += 1;
    this.status.restarts += 1;
    const delay = backoffMs(this.failures, this.opts.backoffBaseMs ?? 500, this.opts.backoffCapMs ?? DEFAULT_BACKOFF_CAP_MS);
    const gate = this.opts.startGate;
    this.opts.log.info({ code, signal, restarts: this.status.restarts, delayMs: delay, reason, startsInFlight: gate?.inFlight, startsQueued: gate?.queued }, 'relay destination dropped; reconnecting');
    this.setState('retrying', maskSecrets(`relay: ${reason}`, this.spec.secrets));
    this.timer = setTimeout(() => this.relaunch(), delay);
    this.timer.unref();
  }
  private stallReason: string | undefined;

  /** Stops pushing (show over, lease lost, source gone, handed back). Resolves once ffmpeg has exited. `lastError`: why, where it says more than the state. */
  async stop(state: 'stopped' | 'idle' = 'stopped', lastError?: string): Promise<void> {
    this.stopped = true;
    this.leavePeers();
    if (this.timer) clearTimeout(this.timer);
    this.slot?.release();
    const run = this.run;
    if (run) {
      run.kill('SIGTERM');
      const hard = setTimeout(() => run.kill('SIGKILL'), STOP_GRACE_MS);
      try {
        await run.exited;
      } finally {
        clearTimeout(hard);
      }
    }
    this.setState(state, lastError);
  }
}
