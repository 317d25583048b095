// Lambda-shaped ARNs for Thaw's resources, so SDKs and tools that parse them keep working.
// Imports nothing.
import { LATEST } from './types.ts';

export const ACCOUNT_ID = '000000000000';

export function functionArn(region: string, name: string, qualifier?: string): string {
  const base = `arn:aws:lambda:${region}:${ACCOUNT_ID}:function:${name}`;
  return qualifier && qualifier !== LATEST ? `${base}:${qualifier}` : base;
}

/** Accepts a plain name, a partial ARN (`123:function:name`) or a full ARN; returns name and qualifier. */
export function parseFunctionRef(ref: string): { name: string; qualifier: string | null } {
  const m = /^(?:arn:[^:]+:lambda:[^:]*:)?(?:\d{12}:)?(?:function:)?([^:]+)(?::([^:]+))?$/.exec(ref);
  if (!m) return { name: ref, qualifier: null };
  return { name: m[1], qualifier: m[2] ?? null };
}
