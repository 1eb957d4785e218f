/**
 * How a promise-returning call ended: the error it rejected with, or 'resolved'. A call that
 * throws synchronously instead fails the test (promise-returning APIs must reject, never throw).
 */
export async function rejection(call: () => Promise<unknown>): Promise<unknown> {
  let promise: Promise<unknown>;
  try {
    promise = call();
  } catch (error) {
    throw new Error(`threw synchronously instead of rejecting: ${String(error)}`);
  }
  let outcome: unknown = 'resolved';
  await promise.then(
    () => undefined,
    (error: unknown) => (outcome = error),
  );
  return outcome;
}
