/**
 * SIGTERM/SIGINT handling of a service process, from its first line on. Imports nothing:
 * each entry installs it (catchStopSignals) before it loads the rest of the service (a second or more
 * under tsx), so that a stop signal at any point of the start is handled, never the default action
 * (killed by the signal: exit 143/130, a file being written cut short).
 */

/** The signals that stop the service gracefully and that npm forwards to a script's process. */
export const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * A SIGTERM/SIGINT this soon after the same first one is that signal delivered twice, not a second
 * request: under `npm start` a signal sent to the process group (Ctrl-C in a terminal, systemd's
 * KillMode=control-group, `kill -- -<pgid>`) reaches the service and npm, and npm forwards its copy to
 * the service (@npmcli/run-script's signal manager) a few milliseconds later.
 */
export const REPEATED_SIGNAL_MS = 1_000;

export interface StopHandlers {
  start: (signal: NodeJS.Signals) => void;
  repeated?: (signal: NodeJS.Signals) => void;
  closing?: () => boolean;
  exiting?: () => void;
}

/**
 * SIGTERM/SIGINT: the first starts the graceful shutdown (start). The same signal again within
 * REPEATED_SIGNAL_MS is ignored (repeated); any later one, or a stop signal after the shutdown began
 * otherwise (`closing`: an uncaught error, SIGHUP), exits 1 at once, as close-with-grace's second
 * signal does, after `exiting` (what must not outlive the process even then: a child it spawned).
 * Used by `npm start` (main, through catchStopSignals) and `npm run demo`.
 */
export function onStopSignals(on: StopHandlers): void {
  let first: { signal: NodeJS.Signals; at: number } | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (!first && !on.closing?.()) {
      first = { signal, at: Date.now() };
      on.start(signal);
    } else if (first?.signal === signal && Date.now() - first.at < REPEATED_SIGNAL_MS) {
      on.repeated?.(signal);
    } else {
      process.stderr.write(`second ${signal}, exiting\n`);
      on.exiting?.();
      process.exit(1);
    }
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
}

export interface StopSignals {
  /** Aborted (reason: the signal) by the first stop signal, whenever it comes: the start gives up. */
  readonly signal: AbortSignal;
  /**
   * Once started: what the stop signals do from now on. A signal that came before (during the last
   * step of the start) calls `start` at once.
   */
  whenStarted(on: StopHandlers): void;
}

/**
 * Installs the stop-signal handlers (onStopSignals) for the whole life of the process: until
 * whenStarted, the first signal aborts `signal` (the start gives up, closes what it opened and the
 * process exits 0); the same signal again within REPEATED_SIGNAL_MS is that one, any other exits 1.
 */
export function catchStopSignals(): StopSignals {
  const controller = new AbortController();
  let handlers: StopHandlers | undefined;
  onStopSignals({
    start: (signal) => {
      controller.abort(signal);
      handlers?.start(signal);
    },
    repeated: (signal) => handlers?.repeated?.(signal),
    closing: () => handlers?.closing?.() ?? false,
    exiting: () => handlers?.exiting?.(),
  });
  return {
    signal: controller.signal,
    whenStarted: (on) => {
      handlers = on;
      if (controller.signal.aborted) on.start(controller.signal.reason as NodeJS.Signals);
    },
  };
}
