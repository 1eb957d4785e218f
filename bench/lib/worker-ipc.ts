/**
 * The child's side of every bench worker (bench/worker.ts, bench/event-worker.ts,
 * bench/lib/watchers.ts): requests come over the IPC channel as `{ id, cmd, args }`, each is
 * answered with `{ id, result }` or `{ id, error }`, and the worker never outlives its parent (the
 * parent going away, even by SIGKILL, closes the channel).
 */
export interface WorkerRequest {
  id: number;
  cmd: string;
  args: Record<string, unknown>;
}

export function serveRequests(handle: (req: WorkerRequest) => Promise<unknown>): void {
  process.on('message', (req: WorkerRequest) => {
    handle(req).then(
      (result) => process.send!({ id: req.id, result }),
      (error: Error) => process.send!({ id: req.id, error: String(error?.stack ?? error) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}
