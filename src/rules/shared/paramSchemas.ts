import { z } from 'zod';
import { parseSize } from '../../util/units.js';

/** A size written as text ("10MiB", "25MB") or as a whole number of bytes; yields bytes. */
export const sizeSchema = z.union([z.string(), z.number()]).transform((text, ctx) => {
  try {
    return parseSize(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});
