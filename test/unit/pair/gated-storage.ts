/** A storage whose `flush()` (the durability point: under fsync always, the fsync) waits for the test. */
import { MemoryStorage } from '../../../src/core/index.js';

export class GatedStorage extends MemoryStorage {
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
