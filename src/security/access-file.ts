/**
 * The allow-list file, loaded at start and reloaded without a restart: on `reload()` (the server
 * calls it on SIGHUP) and when the file changes on disk. A reload that fails (bad JSON, a bad key)
 * keeps the list in force and says why; a server never runs with half a list.
 */
import { EventEmitter } from 'node:events';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { AccessList, AccessListError } from './access.js';

export interface AccessFileEvents {
  reloaded: [previous: AccessList, next: AccessList];
  reloadFailed: [error: Error];
}

const SETTLE_MS = 50;

export class AccessFile extends EventEmitter<AccessFileEvents> {
  private list: AccessList;
  private watcher: FSWatcher | undefined;
  private settle: NodeJS.Timeout | undefined;

  /** Reads the file now; a missing or malformed file throws AccessListError. */
  constructor(readonly path: string) {
    super();
    this.list = AccessFile.read(path);
  }

  static read(path: string): AccessList {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new AccessListError(`cannot read allow-list ${path}: ${(error as NodeJS.ErrnoException).code}`);
    }
    return AccessList.parse(text, path);
  }

  get current(): AccessList {
    return this.list;
  }

  /** Watch the file's folder (editors and Kubernetes replace files rather than write them). */
  watch(): void {
    if (this.watcher) return;
    const name = basename(this.path);
    this.watcher = watch(dirname(this.path), (_event, file) => {
      if (file !== null && file !== name) return;
      clearTimeout(this.settle);
      this.settle = setTimeout(() => this.reload(), SETTLE_MS);
    });
    this.watcher.on('error', () => undefined);
  }

  reload(): boolean {
    let next: AccessList;
    try {
      next = AccessFile.read(this.path);
    } catch (error) {
      this.emit('reloadFailed', error as Error);
      return false;
    }
    const previous = this.list;
    this.list = next;
    this.emit('reloaded', previous, next);
    return true;
  }

  close(): void {
    clearTimeout(this.settle);
    this.watcher?.close();
    this.watcher = undefined;
  }
}
