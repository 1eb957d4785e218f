/**
 * The architecture stays visible (issue 14, DEVELOPERS.md): no module in src/ over 400 lines, a
 * folder reaches another only through its index.ts, and no two folders import each other, even
 * through a third. Read from the files themselves, so a change that breaks a rule fails here.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');
const MAX_LINES = 400;

function modules(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return modules(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative imports and re-exports of a module, resolved to .ts paths under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specs.map((spec) => resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
}

/** The folder a module belongs to ('' for the top-level files of src/). */
function folderOf(file: string): string {
  const rel = relative(SRC, file);
  return rel.includes('/') ? rel.split('/')[0]! : '';
}

describe('source layout', () => {
  const files = modules(SRC);

  it('finds the modules it checks', () => {
    expect(files.length).to.be.above(50);
    expect(files.map((f) => relative(SRC, f))).to.include('pair/node.ts');
  });

  it(`no module in src/ is over ${MAX_LINES} lines`, () => {
    const long = files
      .map((f) => ({ file: relative(SRC, f), lines: readFileSync(f, 'utf8').split('\n').length - 1 }))
      .filter((m) => m.lines > MAX_LINES);
    expect(long, 'modules over the limit').to.deep.equal([]);
  });

  it("a folder imports another folder only through that folder's index.ts", () => {
    const bypasses: string[] = [];
    for (const file of files) {
      const from = folderOf(file);
      for (const target of importsOf(file)) {
        const to = folderOf(target);
        if (from === '' || to === '' || to === from) continue;
        if (relative(join(SRC, to), target) !== 'index.ts')
          bypasses.push(`${relative(SRC, file)} -> ${relative(SRC, target)}`);
      }
    }
    expect(bypasses).to.deep.equal([]);
  });

  it('no import cycle between folders', () => {
    const edges = new Map<string, Set<string>>();
    for (const file of files) {
      const from = folderOf(file);
      for (const target of importsOf(file)) {
        const to = folderOf(target);
        if (from === '' || to === '' || to === from) continue;
        if (!edges.has(from)) edges.set(from, new Set());
        edges.get(from)!.add(to);
      }
    }
    // Depth-first search; a folder met again while on the path closes a cycle.
    const cycles: string[] = [];
    const done = new Set<string>();
    const visit = (folder: string, path: string[]) => {
      if (path.includes(folder)) {
        cycles.push([...path.slice(path.indexOf(folder)), folder].join(' -> '));
        return;
      }
      if (done.has(folder)) return;
      for (const next of edges.get(folder) ?? []) visit(next, [...path, folder]);
      done.add(folder);
    };
    for (const folder of edges.keys()) visit(folder, []);
    expect(cycles).to.deep.equal([]);
  });
});
