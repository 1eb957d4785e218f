/** The figures a run produces, the printed table and the JSON document. */
import { cpus, loadavg, totalmem, release, platform } from 'node:os';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { median } from './stats.js';

export interface Figure {
  /** stable id, e.g. 'ack.pair.await' */
  id: string;
  section: string;
  label: string;
  unit: string;
  /** the reported value (the median of the runs, unless `aggregate` says otherwise) */
  value: number;
  aggregate: 'median' | 'max' | 'sum' | 'single';
  runs: number[];
  /** value divided by the matching ceiling (for latencies: by the raw round-trip time) */
  ratio?: number;
  ratioTo?: string;
  /** what each run saw besides the value (losses, counts) */
  detail?: Record<string, unknown>;
  target?: { text: string; met: boolean };
}

export class Report {
  readonly figures: Figure[] = [];
  readonly notes: string[] = [];

  add(f: Omit<Figure, 'value' | 'aggregate'> & { value?: number; aggregate?: Figure['aggregate'] }): Figure {
    const aggregate = f.aggregate ?? 'median';
    const value =
      f.value ??
      (aggregate === 'max'
        ? Math.max(...f.runs)
        : aggregate === 'sum'
          ? f.runs.reduce((a, b) => a + b, 0)
          : f.runs.every((r) => Number.isFinite(r))
            ? median(f.runs)
            : NaN); // a failed run must show, not vanish into the median
    const figure: Figure = { ...f, value, aggregate };
    const existing = this.figures.findIndex((x) => x.id === f.id);
    if (existing >= 0) this.figures[existing] = figure;
    else this.figures.push(figure);
    return figure;
  }

  get(id: string): Figure | undefined {
    return this.figures.find((f) => f.id === id);
  }

  /** Figures whose value is missing or not a number. */
  missing(expected: readonly string[]): string[] {
    const bad: string[] = [];
    for (const id of expected) {
      const f = this.get(id);
      if (!f || !Number.isFinite(f.value)) bad.push(id);
      else if (f.ratioTo !== undefined && !Number.isFinite(f.ratio)) bad.push(`${id} (ratio)`);
    }
    return bad;
  }
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGB: number;
  node: string;
  zeromq: string;
  os: string;
  /** 1-minute load average when the run started and when it ended: other work on the machine */
  loadStart: number;
  loadEnd?: number;
  /** the commit measured, and whether src/ had uncommitted changes */
  commit: string;
}

export function machine(): Machine {
  let zeromq = 'unknown';
  try {
    zeromq = (
      JSON.parse(
        readFileSync(new URL('../../node_modules/zeromq/package.json', import.meta.url), 'utf8'),
      ) as {
        version: string;
      }
    ).version;
  } catch {
    // not installed where expected
  }
  const c = cpus();
  return {
    cpu: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    memoryGB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    zeromq,
    os: `${platform()} ${release()}`,
    loadStart: Math.round(loadavg()[0]! * 100) / 100,
    commit: commit(),
  };
}

function commit(): string {
  try {
    const cwd = new URL('../..', import.meta.url);
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain', 'src'], { cwd, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${head} + uncommitted changes in src/` : head;
  } catch {
    return 'unknown';
  }
}

export function fmt(value: number, unit: string): string {
  if (!Number.isFinite(value)) return String(value);
  if (unit === 'ms' || unit === 's' || unit === 'µs/update') {
    return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
  }
  if (unit === 'MB') return value.toFixed(0);
  if (unit === 'count') return String(Math.round(value));
  if (value >= 1000) return Math.round(value).toLocaleString('en-US');
  return value >= 10 ? value.toFixed(0) : value.toFixed(2);
}

function fmtRatio(f: Figure): string {
  if (f.ratio === undefined || f.ratioTo === undefined) return '';
  if (!Number.isFinite(f.ratio)) return 'NaN';
  return `${f.ratio >= 10 ? f.ratio.toFixed(0) : f.ratio.toFixed(2)}× ${f.ratioTo}`;
}

function fmtRuns(f: Figure): string {
  if (f.runs.length <= 1) return '';
  const shown = f.runs.slice(0, 6).map((r) => fmt(r, f.unit));
  return shown.join(' / ') + (f.runs.length > 6 ? ` … (${f.runs.length})` : '');
}

/** A Markdown table (readable as plain text too). */
export function table(report: Report): string {
  const header = ['figure', 'value', 'unit', 'ratio to ceiling', 'target', 'runs'];
  const rows: string[][] = [];
  let section = '';
  for (const f of report.figures) {
    if (f.section !== section) {
      section = f.section;
      rows.push([`**${section}**`, '', '', '', '', '']);
    }
    const target = f.target ? `${f.target.met ? 'met' : 'MISSED'}: ${f.target.text}` : '';
    const agg =
      f.aggregate === 'median' && f.runs.length > 1 ? ' (median)' : f.aggregate === 'max' ? ' (worst)' : '';
    rows.push([f.label + agg, fmt(f.value, f.unit), f.unit, fmtRatio(f), target, fmtRuns(f)]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
