/** Convict formats the schema's parts share (schema.ts, events-schema.ts, security-schema.ts). */

export const positive = (value: unknown): void => {
  if (!Number.isInteger(value) || (value as number) <= 0) throw new Error('must be a positive integer');
};

/** A positive integer no larger than `max` (`why`, when given, follows the error in brackets). */
export const positiveAtMost =
  (max: number, why?: string) =>
  (value: unknown): void => {
    positive(value);
    if ((value as number) > max) throw new Error(`must be at most ${max}${why ? ` (${why})` : ''}`);
  };
