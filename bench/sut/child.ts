/** The child side of bench/lib/proc.ts: announce readiness over IPC, shut down on SIGTERM or when the bench goes away. */

export function ready(info: Record<string, unknown> = {}): void {
  process.send?.({ type: 'ready', ...info });
}

export function onStop(fn: () => Promise<void>): void {
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    const hard = setTimeout(() => process.exit(1), 10_000);
    hard.unref();
    fn().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`shutdown failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // the bench process died: never outlive it
  process.on('disconnect', stop);
}

export function requireEnv(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
}
