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

/** A layer's ARN (`…:layer:name`), or one version's (`…:layer:name:3`). */
export function layerArn(region: string, name: string, version?: number): string {
  const base = `arn:aws:lambda:${region}:${ACCOUNT_ID}:layer:${name}`;
  return version === undefined ? base : `${base}:${version}`;
}

/** A layer version ARN's parts, or null when it is not one (any region and account: the caller checks them). */
export function parseLayerVersionArn(arn: string): { region: string; account: string; name: string; version: number } | null {
  const m = /^arn:[a-z-]+:lambda:([a-z0-9-]+):(\d{12}):layer:([A-Za-z0-9_-]{1,140}):([1-9]\d{0,9})$/.exec(arn);
  return m ? { region: m[1], account: m[2], name: m[3], version: Number(m[4]) } : null;
}
