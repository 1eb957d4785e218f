/**
 * Frame mutations for the fast-check fuzzers (test/integration/fuzz.test.ts against the server's
 * ports, client-fuzz.test.ts against the client): damage one frame of a valid message the way a
 * broken or hostile peer would. Each fuzzer weights the operations with its own arbitrary.
 */
export type Op =
  'flip' | 'set' | 'truncate' | 'extend' | 'drop' | 'duplicate' | 'insert' | 'swap' | 'empty' | 'huge';

export interface Mutation {
  op: Op;
  frame: number;
  at: number;
  value: number;
  data: Buffer;
}

export function mutate(frames: Buffer[], m: Mutation): Buffer[] {
  const out = frames.length > 0 ? [...frames] : [Buffer.alloc(0)];
  // frame 0 (a command, or a key) only when asked for: damage to a command makes nothing but
  // unknown commands
  const i = m.frame === 0 || out.length === 1 ? 0 : 1 + ((m.frame - 1) % (out.length - 1));
  const f = out[i]!;
  switch (m.op) {
    case 'flip':
    case 'set':
      if (f.length > 0) {
        const copy = Buffer.from(f);
        const at = m.at % copy.length;
        copy.writeUInt8(m.op === 'flip' ? copy.readUInt8(at) ^ (m.value || 0x80) : m.value, at);
        out[i] = copy;
      }
      break;
    case 'truncate':
      out[i] = f.subarray(0, m.at % (f.length + 1));
      break;
    case 'extend':
      out[i] = Buffer.concat([f, m.data]);
      break;
    case 'drop':
      out.splice(i, 1);
      break;
    case 'duplicate':
      out.splice(i, 0, f);
      break;
    case 'insert':
      out.splice(i, 0, m.data);
      break;
    case 'swap': {
      const j = m.at % out.length;
      out[i] = out[j]!;
      out[j] = f;
      break;
    }
    case 'empty':
      out[i] = Buffer.alloc(0);
      break;
    case 'huge': {
      // A length or number field set to its largest (or a poisonous) value.
      const width = [1, 2, 4, 8][m.value % 4]!;
      if (f.length < width) break;
      const copy = Buffer.from(f);
      const at = m.at % (copy.length - width + 1);
      if (width === 1) copy.writeUInt8(0xff, at);
      else if (width === 2) copy.writeUInt16BE(0xffff, at);
      else if (width === 4) copy.writeUInt32BE([0xffffffff, 0x7fffffff, 0x00100001][m.value % 3]!, at);
      else copy.writeDoubleBE([NaN, Infinity, -1, 2 ** 60][m.value % 4]!, at);
      out[i] = copy;
      break;
    }
  }
  return out.length > 0 ? out : [Buffer.alloc(0)];
}
