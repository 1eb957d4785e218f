/**
 * The whole example in one terminal: starts two billing instances and one email service, waits
 * until each has joined its group, runs the order service, and checks that every order was billed
 * once and emailed once. Exits 0 if so, 1 if not (or after 60 s).
 *
 *   npm start                                        # first, in another terminal
 *   npx tsx examples/orders/run-all.ts [COUNT]       # default 10 orders
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const count = process.argv[2] ?? '10';
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const billed = new Map<string, number>();
const emailed = new Map<string, number>();
const created: string[] = [];
const ready = new Set<string>();
const perInstance = new Map<string, number>();
const children: ChildProcess[] = [];

/** Starts one script with tsx, echoes its lines and counts what it says it did. */
function start(script: string, ...args: string[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', here(script), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  let rest = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    rest += chunk;
    const lines = rest.split('\n');
    rest = lines.pop()!;
    for (const line of lines) {
      console.log(line);
      const name = line.split(':')[0]!;
      const id = / order ([^ ,]+)/.exec(line)?.[1];
      if (/: ready/.test(line)) ready.add(name);
      else if (id && /: billed order /.test(line)) {
        billed.set(id, (billed.get(id) ?? 0) + 1);
        perInstance.set(name, (perInstance.get(name) ?? 0) + 1);
      } else if (id && /: emailed /.test(line)) emailed.set(id, (emailed.get(id) ?? 0) + 1);
      else if (id && /^orders: created order /.test(line)) created.push(id);
    }
  });
  return child;
}

async function until(what: string, done: () => boolean, deadline: number): Promise<void> {
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const deadline = Date.now() + 60_000;
let ok = false;
try {
  start('./billing.ts', 'billing-1');
  start('./billing.ts', 'billing-2');
  start('./email.ts', 'email');
  await until('the services to join their groups', () => ready.size === 3, deadline);
  const orders = start('./order-service.ts', count);
  const exit = await new Promise<number | null>((resolve) => orders.once('exit', resolve));
  if (exit !== 0) throw new Error(`the order service exited with ${exit}`);
  await until(
    'every order to be billed and emailed',
    () => created.every((id) => billed.has(id) && emailed.has(id)),
    deadline,
  );
  // A duplicate would come soon after: give it a moment to show.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const wrong = created.filter((id) => billed.get(id) !== 1 || emailed.get(id) !== 1);
  const shares = ['billing-1', 'billing-2'].map((n) => `${n} billed ${perInstance.get(n) ?? 0}`);
  console.log(
    `run-all: ${created.length} orders, each billed once and emailed once: ` +
      `${wrong.length === 0 ? 'yes' : `NO (${wrong.join(', ')})`} (${shares.join(', ')})`,
  );
  ok = wrong.length === 0 && created.length === Number(count);
} catch (error) {
  console.error(`run-all: ${(error as Error).message}`);
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
}
process.exitCode = ok ? 0 : 1;
