/** A storage whose `flush()` (the durability point: under fsync always, the fsync) waits for the test. */
import { MemoryStorage } from '../../../src/core/index.js';

export class GatedStorage extends MemoryStorage {
  /** Its flush is the test's to release: an append is not durable until then. */
  override readonly durableOnAppend = false;
  private gate = Promise.resolve();
  private open: (() => void) | undefined;
  private fail: ((error: Error) => void) | undefined;

  hold(): void {
    this.gate = new Promise<void>((resolve, reject) => {
      this.open = resolve;
      this.fail = reject;
    });
    this.gate.catch(() => undefined);
  }

  release(): void {
    this.open?.();
  }

  reject(error: Error): void {
    this.fail?.(error);
  }

  override flush(): Promise<void> {
    return this.gate;
  }
}
