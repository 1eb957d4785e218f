/** Reading a node's HTTP endpoints (/metrics, /digest). */

/** The value of one Prometheus sample from a node's /metrics (labels must all match; none: the sum of every label set), or 0. */
export async function metric(
  http: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(`${http}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:]+)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[4]);
  }
  return total;
}

export async function digest(http: string): Promise<{ sequence: number; keys: number; digest: string }> {
  return (await (await fetch(`${http}/digest`, { signal: AbortSignal.timeout(5000) })).json()) as never;
}
