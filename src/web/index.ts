// The dashboard: plain static files in src/web/assets (HTML, CSS, ES modules: no build step, no framework)
// that call the Lambda and Thaw APIs from the browser, and the headers they are served with. Public entry
// of src/web; imports node built-ins only. The gateway routes `/` and `/dashboard/*` here.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { extname, join } from 'node:path';

export interface Asset {
  readonly body: Buffer;
  readonly contentType: string;
  /** A strong validator: the content's hash, so a page reload costs a 304 and an upgrade is seen at once. */
  readonly etag: string;
}

const ASSET_DIR = join(import.meta.dirname, 'assets');

/** What is served, by extension; anything else in the directory (its tsconfig) is not. */
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * No script but the page's own files (no inline script or event-handler attributes, so a function name or a
 * log line that slipped into markup still could not run), no inline style, no framing, no form posts, API
 * calls to this origin only. Blob and data images are the Pareto chart's download link and the favicon.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:", "connect-src 'self'",
  "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
].join('; ');

/** Headers on every dashboard response besides its type and validator. */
export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  // The file names carry no hash, so the browser revalidates each time (a 304 when unchanged).
  'cache-control': 'no-cache',
};

/** The dashboard's files, read once: the page and its modules, by the name under /dashboard/. */
export function loadAssets(dir = ASSET_DIR): ReadonlyMap<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const contentType = CONTENT_TYPES[extname(name)];
    if (!contentType) continue;
    const body = readFileSync(join(dir, name));
    assets.set(name, { body, contentType, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` });
  }
  return assets;
}
