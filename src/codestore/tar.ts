// A gzip-compressed tar reader of our own: ustar with pax and GNU long names, hard links resolved to
// earlier files, everything else refused. Decompression is bounded so a gzip bomb stops at the limit.
// Imports src/core and node:zlib.
import { gunzipSync } from 'node:zlib';
import { ThawError } from '../core/errors.ts';
import type { RawEntry } from './entries.ts';

const BLOCK = 512;
const bad = (msg: string) => new ThawError('THAW_E_PACKAGE_FORMAT', `not a valid .tgz archive: ${msg}`);

export function readTgz(gz: Buffer, maxUnpackedBytes: number, maxRatio: number): RawEntry[] {
  // Headers and padding take room too: allow a margin over the content limit, then check content exactly.
  const cap = maxUnpackedBytes + 16 * 1024 * 1024;
  let tar: Buffer;
  try {
    tar = gunzipSync(gz, { maxOutputLength: cap });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new ThawError('THAW_E_PACKAGE_UNPACKED_TOO_LARGE', `the archive unpacks to more than ${maxUnpackedBytes} bytes`);
    }
    throw bad(`gzip data is damaged: ${(err as Error).message}`);
  }
  if (tar.length > 1024 * 1024 && tar.length / gz.length > maxRatio) {
    throw new ThawError('THAW_E_PACKAGE_BOMB', `the archive expands ${Math.round(tar.length / gz.length)}-fold (limit ${maxRatio})`);
  }
  return parseTar(tar);
}

function parseTar(tar: Buffer): RawEntry[] {
  const entries: RawEntry[] = [];
  const files = new Map<string, RawEntry>();
  let pax: Record<string, string> = {};
  let longName: string | null = null;
  let longLink: string | null = null;
  let p = 0;
  for (;;) {
    if (p + BLOCK > tar.length) throw bad('the archive ends without its end-of-archive blocks (truncated)');
    const h = tar.subarray(p, p + BLOCK);
    if (h.every((b) => b === 0)) break;
    checkChecksum(h, p);
    const typeflag = String.fromCharCode(h[156] || 0x30);
    const size = pax.size !== undefined ? Number(pax.size) : octal(h.subarray(124, 136), 'size');
    if (!Number.isSafeInteger(size) || size < 0) throw bad(`an entry has an invalid size at offset ${p}`);
    const dataStart = p + BLOCK;
    if (dataStart + size > tar.length) throw bad(`an entry's data runs past the end at offset ${p}`);
    const data = tar.subarray(dataStart, dataStart + size);
    p = dataStart + Math.ceil(size / BLOCK) * BLOCK;

    if (typeflag === 'x') { pax = parsePax(data); continue; }
    if (typeflag === 'g') continue;
    if (typeflag === 'L') { longName = cstr(data); continue; }
    if (typeflag === 'K') { longLink = cstr(data); continue; }

    // Only POSIX ustar ("ustar\0") has a name prefix; old GNU headers keep times in those bytes.
    const ustar = h.toString('latin1', 257, 263) === 'ustar\0';
    const prefix = ustar ? cstr(h.subarray(345, 500)) : '';
    const baseName = cstr(h.subarray(0, 100));
    const name = pax.path ?? longName ?? (prefix ? `${prefix}/${baseName}` : baseName);
    const link = pax.linkpath ?? longLink ?? cstr(h.subarray(157, 257));
    const mode = octal(h.subarray(100, 108), 'mode') & 0o7777;
    pax = {};
    longName = null;
    longLink = null;

    // Pre-POSIX tars mark directories only by a trailing slash on a regular entry.
    const kind = typeflag === '0' && name.endsWith('/') ? '5' : typeflag;
    switch (kind) {
      case '0': case '7': {
        const e: RawEntry = { name, type: 'file', mode, size, compressedSize: size, read: () => data };
        files.set(stripDot(name), e);
        entries.push(e);
        break;
      }
      case '5':
        entries.push({ name: name.replace(/\/+$/, ''), type: 'dir', mode, size: 0, compressedSize: 0, read: () => Buffer.alloc(0) });
        break;
      case '2':
        entries.push({ name, type: 'symlink', mode, size: 0, compressedSize: 0, read: () => Buffer.from(link), linkTarget: () => link });
        break;
      case '1': {
        // A hard link names an earlier file of the archive by its path from the root; extract as a copy.
        const target = files.get(stripDot(link));
        if (!target) throw new ThawError('THAW_E_PACKAGE_LINK_UNSAFE', `${name} is a hard link to ${link}, which is not a file earlier in the package`);
        const e: RawEntry = { name, type: 'file', mode: mode || target.mode, size: target.size, compressedSize: 0, read: target.read };
        files.set(stripDot(name), e);
        entries.push(e);
        break;
      }
      default:
        throw new ThawError('THAW_E_PACKAGE_ENTRY_UNSUPPORTED', `${name} is a ${KINDS[typeflag] ?? `type '${typeflag}'`} entry; only files, directories and symlinks can be packaged`);
    }
  }
  return entries;
}

const KINDS: Record<string, string> = { '3': 'character device', '4': 'block device', '6': 'FIFO', S: 'sparse file', V: 'volume label', M: 'multi-volume' };

/** The key a hard link finds its target by: the path without '.' segments or doubled slashes. */
const stripDot = (n: string) => n.split('/').filter((s) => s !== '' && s !== '.').join('/');

function cstr(b: Buffer): string {
  const end = b.indexOf(0);
  return b.toString('utf8', 0, end === -1 ? b.length : end);
}

/** Octal, or GNU base-256 when the top bit of the first byte is set. */
function octal(b: Buffer, what: string): number {
  if (b[0] & 0x80) {
    let n = 0;
    for (let i = 1; i < b.length; i++) n = n * 256 + b[i];
    return n;
  }
  const s = cstr(b).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw bad(`the ${what} field ${JSON.stringify(s)} is not octal`);
  return parseInt(s, 8);
}

function checkChecksum(h: Buffer, at: number) {
  const stored = octal(h.subarray(148, 156), 'checksum');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  if (sum !== stored) throw bad(`header checksum mismatch at offset ${at} (damaged or not a tar)`);
}

/** pax extended header records: "LEN key=value\n". */
function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let p = 0;
  while (p < data.length) {
    const sp = data.indexOf(0x20, p);
    if (sp === -1) break;
    const len = Number(data.toString('latin1', p, sp));
    if (!Number.isInteger(len) || len <= 0 || p + len > data.length) throw bad('a pax header record is malformed');
    const rec = data.toString('utf8', sp + 1, p + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    p += len;
  }
  return out;
}
