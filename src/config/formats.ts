/** Convict formats the schema's parts share (schema.ts, events-schema.ts, security-schema.ts). */

export const positive = (value: unknown): void => {
  if (!Number.isInteger(value) || (value as number) <= 0) throw new Error('must be a positive integer');
};
