/**
 * docs/api.md stays true: every ```ts block in it is a whole program, and each is run here, as
 * it is, against a real single server (only the import of 'twinstar' and the servers of the
 * local pair are rewritten to this checkout and this server). A block that throws, fails an
 * assert or does not exit fails the test, with its output.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts, startSingle, type ServerProcess } from '../helpers/index.js';

const DOC = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
const INDEX = new URL('../../src/index.ts', import.meta.url).href;
const LOCAL_PAIR = "['tcp://127.0.0.1:5556', 'tcp://127.0.0.1:5566']";

/** The ```ts blocks of a Markdown text, each with the heading it is under. */
export function tsBlocks(markdown: string): { heading: string; code: string }[] {
  const blocks: { heading: string; code: string }[] = [];
  let heading = '';
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('#')) heading = line.replace(/^#+\s*/, '');
    if (line.trim() !== '```ts') continue;
    const end = lines.indexOf('```', i + 1);
    if (end === -1) throw new Error(`unclosed block under ${heading}`);
    blocks.push({ heading, code: lines.slice(i + 1, end).join('\n') });
    i = end;
  }
  return blocks;
}

async function runProgram(file: string, ms: number): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, output };
}

describe('docs/api.md examples (run against a real server)', function () {
  this.timeout(120_000);
  let server: ServerProcess;
  let dir: string;
  const blocks = tsBlocks(DOC);

  before(async () => {
    const port = await freePorts(5);
    server = startSingle(port, port + 4);
    await server.ready('ACTIVE');
    dir = mkdtempSync(join(tmpdir(), 'twinstar-docs-'));
  });
  after(async () => {
    await server.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('has examples, each a program that imports twinstar and connects to the local pair', () => {
    expect(blocks.length).to.be.at.least(6);
    for (const { heading, code } of blocks) {
      expect(code, heading).to.contain("from 'twinstar'");
      expect(code, heading).to.satisfy((c: string) => c.includes(LOCAL_PAIR));
    }
  });

  for (const [i, { heading }] of blocks.entries()) {
    it(`example ${i + 1} (${heading}) runs to the end`, async () => {
      const code = blocks[i]!.code.replaceAll("from 'twinstar'", `from '${INDEX}'`).replaceAll(
        LOCAL_PAIR,
        `['${server.endpoint}']`,
      );
      const file = join(dir, `example-${i + 1}.mts`);
      writeFileSync(file, code);
      const run = await runProgram(file, 60_000);
      expect(run.code, `example ${i + 1} under "${heading}":\n${run.output}`).to.equal(0);
    });
  }
});
