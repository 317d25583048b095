// A ZIP reader and writer of our own: the reader trusts nothing in the archive (sizes, offsets, CRCs and
// file types are all checked, inflation is bounded by the declared size), the writer makes deflated
// archives with unix modes. Imports src/core and node:zlib.
import { crc32, deflateRawSync, inflateRawSync } from 'node:zlib';
import { ThawError } from '../core/errors.ts';
import type { RawEntry } from './entries.ts';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const HOST_UNIX = 3;
/** Bit 0: encrypted; bit 6: strong encryption. */
const FLAGS_ENCRYPTED = 0x41;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

const bad = (msg: string) => new ThawError('THAW_E_PACKAGE_FORMAT', `not a valid zip archive: ${msg}`);

/** The central directory's entries; data is read lazily (and checked) by each entry's read(). */
export function readZip(buf: Buffer, maxEntryBytes: number): RawEntry[] {
  const { count, cdOffset, cdSize, cdEnd } = readEnd(buf);
  if (cdOffset + cdSize > cdEnd) throw bad('the central directory lies outside the file');

  const entries: RawEntry[] = [];
  const spans: [number, number, string][] = [];
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdEnd || buf.readUInt32LE(p) !== SIG_CENTRAL) throw bad(`central directory record ${i} is damaged`);
    const madeBy = buf.readUInt16LE(p + 4);
    const flags = buf.readUInt16LE(p + 8);
    const method = buf.readUInt16LE(p + 10);
    const crc = buf.readUInt32LE(p + 16);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const external = buf.readUInt32LE(p + 38);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    if (p + 46 + nameLen + extraLen + commentLen > cdEnd) throw bad(`central directory record ${i} runs past its end`);
    const { size, compressed, localOffset } = entrySizes(buf, p, buf.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen), name);
    p += 46 + nameLen + extraLen + commentLen;

    if (flags & FLAGS_ENCRYPTED) throw new ThawError('THAW_E_PACKAGE_ENTRY_UNSUPPORTED', `${name} is encrypted; packages cannot contain encrypted entries`);
    if (method !== 0 && method !== 8) throw new ThawError('THAW_E_PACKAGE_ENTRY_UNSUPPORTED', `${name} uses compression method ${method}; use deflate (8) or store (0)`);
    if (localOffset + 30 > cdOffset || buf.readUInt32LE(localOffset) !== SIG_LOCAL) throw bad(`the local header of ${name} is missing`);
    if (buf.readUInt16LE(localOffset + 6) & FLAGS_ENCRYPTED) throw new ThawError('THAW_E_PACKAGE_ENTRY_UNSUPPORTED', `${name} is encrypted; packages cannot contain encrypted entries`);
    const dataStart = localOffset + 30 + buf.readUInt16LE(localOffset + 26) + buf.readUInt16LE(localOffset + 28);
    if (dataStart + compressed > cdOffset) throw bad(`the data of ${name} runs past the end of the archive`);
    spans.push([localOffset, dataStart + compressed, name]);

    const mode = (madeBy >> 8) === HOST_UNIX ? external >>> 16 : 0;
    const isDir = name.endsWith('/') || (mode & S_IFMT) === S_IFDIR || (external & 0x10) !== 0;
    const type = (mode & S_IFMT) === S_IFLNK ? 'symlink' : isDir ? 'dir' : 'file';
    if (mode && ![0, S_IFREG, S_IFDIR, S_IFLNK].includes(mode & S_IFMT)) {
      throw new ThawError('THAW_E_PACKAGE_ENTRY_UNSUPPORTED', `${name} is a device, FIFO or socket; only files, directories and symlinks can be packaged`);
    }
    if (method === 0 && compressed !== size) throw bad(`${name} is stored but its sizes differ`);
    if (size > maxEntryBytes) {
      throw new ThawError('THAW_E_PACKAGE_UNPACKED_TOO_LARGE', `${name} unpacks to ${size} bytes, over the limit of ${maxEntryBytes}`);
    }
    const read = () => {
      const raw = buf.subarray(dataStart, dataStart + compressed);
      let data: Buffer;
      try {
        data = method === 0 ? raw : inflateRawSync(raw, { maxOutputLength: Math.max(1, size) });
      } catch (err) {
        if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw new ThawError('THAW_E_PACKAGE_BOMB', `${name} inflates to more than the ${size} bytes it declares`);
        throw bad(`${name} does not inflate: ${(err as Error).message}`);
      }
      if (data.length !== size) throw bad(`${name} inflates to ${data.length} bytes, not the ${size} it declares`);
      if ((crc32(data) >>> 0) !== crc) throw bad(`${name} fails its CRC check (the archive is damaged)`);
      return data;
    };
    entries.push({
      name: type === 'dir' ? name.replace(/\/+$/, '') : name,
      type,
      mode: mode & 0o7777,
      size,
      compressedSize: compressed,
      read,
      linkTarget: type === 'symlink' ? () => read().toString('utf8') : undefined,
    });
  }
  checkOverlaps(spans);
  return entries;
}

function findEocd(buf: Buffer): number {
  if (buf.length < 22) throw bad('too short to be a zip');
  const stop = Math.max(0, buf.length - 22 - 0xffff);
  for (let i = buf.length - 22; i >= stop; i--) {
    if (buf.readUInt32LE(i) === SIG_EOCD && i + 22 + buf.readUInt16LE(i + 20) === buf.length) return i;
  }
  throw bad('no end-of-central-directory record (truncated or not a zip)');
}

/** Where the central directory is and how many records it holds, from the EOCD or its ZIP64 form. */
function readEnd(buf: Buffer): { count: number; cdOffset: number; cdSize: number; cdEnd: number } {
  const eocd = findEocd(buf);
  if (buf.readUInt16LE(eocd + 4) !== 0 || buf.readUInt16LE(eocd + 6) !== 0) throw bad('multi-disk (split) archives are not supported');
  const classic = { count: buf.readUInt16LE(eocd + 10), cdSize: buf.readUInt32LE(eocd + 12), cdOffset: buf.readUInt32LE(eocd + 16), cdEnd: eocd };
  if (eocd < 20 || buf.readUInt32LE(eocd - 20) !== SIG_ZIP64_LOCATOR) return classic;
  // ZIP64: the locator points at a record holding 64-bit counts and offsets.
  const record = u64(buf, eocd - 20 + 8, 'ZIP64 end record offset');
  if (record + 56 > eocd - 20 || buf.readUInt32LE(record) !== SIG_ZIP64_EOCD) throw bad('the ZIP64 end record is missing or damaged');
  return {
    count: u64(buf, record + 32, 'entry count'),
    cdSize: u64(buf, record + 40, 'central directory size'),
    cdOffset: u64(buf, record + 48, 'central directory offset'),
    cdEnd: record,
  };
}

/** An entry's sizes and local header offset; 0xFFFFFFFF fields are in the ZIP64 extra field (id 1), in order. */
function entrySizes(buf: Buffer, p: number, extra: Buffer, name: string): { size: number; compressed: number; localOffset: number } {
  const out = { size: buf.readUInt32LE(p + 24), compressed: buf.readUInt32LE(p + 20), localOffset: buf.readUInt32LE(p + 42) };
  const wide = (['size', 'compressed', 'localOffset'] as const).filter((k) => out[k] === 0xffffffff);
  if (wide.length === 0) return out;
  for (let q = 0; q + 4 <= extra.length;) {
    const id = extra.readUInt16LE(q);
    const len = extra.readUInt16LE(q + 2);
    if (q + 4 + len > extra.length) break;
    if (id === 0x0001) {
      if (len < wide.length * 8) break;
      wide.forEach((k, j) => { out[k] = u64(extra, q + 4 + j * 8, `${name} ${k}`); });
      return out;
    }
    q += 4 + len;
  }
  throw bad(`${name} lacks the ZIP64 extra field its sizes call for`);
}

function u64(buf: Buffer, at: number, what: string): number {
  if (at < 0 || at + 8 > buf.length) throw bad(`the ${what} lies outside the file`);
  const n = buf.readBigUInt64LE(at);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`the ${what} is impossibly large`);
  return Number(n);
}

/** Two entries sharing data is how "overlapping" zip bombs multiply a small file; real zips never do it. */
function checkOverlaps(spans: [number, number, string][]) {
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i][0] < spans[i - 1][1]) {
      throw new ThawError('THAW_E_PACKAGE_BOMB', `entries ${spans[i - 1][2]} and ${spans[i][2]} share their data (an overlapping zip bomb)`);
    }
  }
}

export interface ZipInput {
  path: string;
  data: Buffer;
  /** Unix mode with type bits; 0o120777 makes a symlink whose target is data. Default a 0o644 file. */
  mode?: number;
}

/**
 * A deflated zip of the entries, with unix modes; directories end in '/'. `deflate: false` stores them
 * as they are: a built-in layer made at every start costs a copy, not seconds of compression.
 */
export function writeZip(entries: ZipInput[], options: { deflate?: boolean } = {}): Buffer {
  if (entries.length > 0xffff) {
    throw new ThawError('THAW_E_PACKAGE_TOO_MANY_FILES', `${entries.length} entries do not fit a zip without ZIP64 (at most 65535); bundle the code`);
  }
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    if (offset + e.data.length > 0xfffffff0) throw new ThawError('THAW_E_PACKAGE_TOO_LARGE', 'the zip would exceed 4 GB, which needs ZIP64; package less');
    const isDir = e.path.endsWith('/');
    const mode = e.mode ?? (isDir ? S_IFDIR | 0o755 : S_IFREG | 0o644);
    const fullMode = (mode & S_IFMT) ? mode : (isDir ? S_IFDIR : S_IFREG) | mode;
    const name = Buffer.from(e.path);
    const deflated = isDir || options.deflate === false ? Buffer.alloc(0) : deflateRawSync(e.data);
    const useDeflate = options.deflate !== false && deflated.length < e.data.length;
    const body = useDeflate ? deflated : e.data;
    const crc = crc32(e.data) >>> 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(SIG_LOCAL, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6); // names are UTF-8
    local.writeUInt16LE(useDeflate ? 8 : 0, 8);
    local.writeUInt32LE(0x21, 10); // 1980-01-01 00:00, a fixed time keeps archives reproducible
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(SIG_CENTRAL, 0);
    central.writeUInt16LE((HOST_UNIX << 8) | 20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(useDeflate ? 8 : 0, 10);
    central.writeUInt32LE(0x21, 12);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(e.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(((fullMode << 16) | (isDir ? 0x10 : 0)) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(SIG_EOCD, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}
