// The code store against hostile and ordinary packages: every rejection rule with an archive built to
// break it, round trips with the system's zip and tar, handler lookup and export checks, the blob store,
// the node cache, and ingest leaving nothing behind when it refuses.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { isThawError, type ErrorCode } from '../core/errors.ts';
import {
  BlobStore, CodeCache, checkHandlerExport, defaultPackageLimits, extractPackage, ingestPackage, parseHandler,
  readPackage, resolveHandlerFile, sha256, zipDirectory, zipEntries, type PackageLimits,
} from './index.ts';
import { compilerTag } from './typescript.ts';

const work = mkdtempSync('/dev/shm/thaw-codestore-test-');
after(() => rmSync(work, { recursive: true, force: true }));
let seq = 0;
const fresh = () => join(work, `d${seq++}`);

const rejects = (code: ErrorCode) => (e: unknown) => isThawError(e) && e.code === code;
const refused = (bytes: Buffer, code: ErrorCode, limits: PackageLimits = defaultPackageLimits) =>
  assert.throws(() => readPackage(bytes, limits), rejects(code));
const file = (path: string, text = 'x', mode?: number) => ({ path, data: Buffer.from(text), mode });

/** A ustar archive of raw entries, gzipped; lets tests write what real tar would refuse to. */
function tgz(entries: { name: string; type?: string; data?: string; link?: string; mode?: number }[], opts: { corruptChecksum?: boolean; noEnd?: boolean } = {}): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100, 'utf8');
    h.write(`${(e.mode ?? 0o644).toString(8).padStart(7, '0')}\0`, 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
    h.write('00000000000\0', 136);
    h.write(e.type ?? '0', 156);
    if (e.link) h.write(e.link, 157, 100, 'utf8');
    h.write('ustar\0', 257);
    h.write('00', 263);
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${(opts.corruptChecksum ? sum + 1 : sum).toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  if (!opts.noEnd) blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

describe('zip packages', () => {
  test('a good zip is read with its files, directories, modes and symlinks', async () => {
    const zip = zipEntries([file('index.mjs', 'export const handler = 1;'), file('lib/', '', 0o40755), file('lib/a.js', 'a', 0o100755), file('link.js', 'lib/a.js', 0o120777)]);
    const pkg = readPackage(zip, defaultPackageLimits);
    assert.equal(pkg.format, 'zip');
    assert.deepEqual(pkg.entries.map((e) => [e.path, e.type]), [['index.mjs', 'file'], ['lib', 'dir'], ['lib/a.js', 'file'], ['link.js', 'symlink']]);
    const dir = fresh();
    const out = await extractPackage(zip, dir, defaultPackageLimits);
    assert.equal(out.files, 2);
    assert.equal(readFileSync(join(dir, 'lib/a.js'), 'utf8'), 'a');
    assert.equal(statSync(join(dir, 'lib/a.js')).mode & 0o777, 0o755);
    assert.equal(readlinkSync(join(dir, 'link.js')), 'lib/a.js');
  });

  for (const [name, why] of [['../evil.js', 'parent'], ['a/../../evil.js', 'nested parent'], ['/etc/evil', 'absolute'], ['C:/evil.js', 'drive letter'], ['a\\..\\evil.js', 'backslash']]) {
    test(`an entry named ${JSON.stringify(name)} (${why}) is refused`, () => refused(zipEntries([file('index.js'), file(name)]), 'THAW_E_PACKAGE_PATH_UNSAFE'));
  }

  test('symlinks pointing outside, absolute symlinks and paths through symlinks are refused', () => {
    refused(zipEntries([file('up', '../../etc/passwd', 0o120777)]), 'THAW_E_PACKAGE_LINK_UNSAFE');
    refused(zipEntries([file('sub/up', '../../x', 0o120777)]), 'THAW_E_PACKAGE_LINK_UNSAFE');
    refused(zipEntries([file('abs', '/etc/passwd', 0o120777)]), 'THAW_E_PACKAGE_LINK_UNSAFE');
    refused(zipEntries([file('dir', 'real', 0o120777), file('real/'), file('dir/x.js')]), 'THAW_E_PACKAGE_LINK_UNSAFE');
  });

  test('a zip bomb is refused by its expansion ratio, and a lying size by bounded inflation', () => {
    const bomb = zipEntries([file('index.js'), { path: 'zeros.bin', data: Buffer.alloc(50 * 1024 * 1024) }]);
    assert.ok(bomb.length < 200 * 1024, 'the bomb is small');
    refused(bomb, 'THAW_E_PACKAGE_BOMB');

    const liar = zipEntries([{ path: 'zeros.bin', data: Buffer.alloc(200_000) }]);
    const cd = liar.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    liar.writeUInt32LE(100, cd + 24); // central directory now claims 100 bytes unpacked
    assert.throws(() => readPackage(liar, defaultPackageLimits).entries[0].read(), rejects('THAW_E_PACKAGE_BOMB'));
    const dir = fresh();
    return assert.rejects(extractPackage(liar, dir, defaultPackageLimits), rejects('THAW_E_PACKAGE_BOMB')).then(() => {
      assert.equal(existsSync(dir), false, 'a failed extraction removes its directory');
    });
  });

  test('entries that share their data (overlapping bomb) are refused', () => {
    const one = zipEntries([file('a.js', 'same data')]);
    const cd = one.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    const eocd = one.length - 22;
    const record = one.subarray(cd, eocd);
    const copy = Buffer.from(record);
    copy.write('b', 46); // same local offset, another name
    const cdBuf = Buffer.concat([record, copy]);
    const end = Buffer.from(one.subarray(eocd));
    end.writeUInt16LE(2, 8);
    end.writeUInt16LE(2, 10);
    end.writeUInt32LE(cdBuf.length, 12);
    refused(Buffer.concat([one.subarray(0, cd), cdBuf, end]), 'THAW_E_PACKAGE_BOMB');
  });

  test('size, unpacked size and file count limits', () => {
    const zip = zipEntries(Array.from({ length: 6 }, (_, i) => file(`f${i}.js`, 'y'.repeat(1000))));
    refused(zip, 'THAW_E_PACKAGE_TOO_LARGE', { ...defaultPackageLimits, maxPackageBytes: 100 });
    refused(zip, 'THAW_E_PACKAGE_UNPACKED_TOO_LARGE', { ...defaultPackageLimits, maxUnpackedBytes: 5000 });
    refused(zip, 'THAW_E_PACKAGE_TOO_MANY_FILES', { ...defaultPackageLimits, maxFiles: 5 });
    assert.equal(readPackage(zip, { ...defaultPackageLimits, maxFiles: 6 }).entries.length, 6);
  });

  test('damaged, truncated, encrypted, duplicate and non-zip input is refused', () => {
    const good = zipEntries([{ path: 'a.txt', data: Buffer.from('stored because short') }]);
    const badCrc = Buffer.from(good);
    badCrc[30 + 'a.txt'.length] ^= 0xff;
    assert.throws(() => readPackage(badCrc, defaultPackageLimits).entries[0].read(), rejects('THAW_E_PACKAGE_FORMAT'));
    refused(good.subarray(0, good.length - 10), 'THAW_E_PACKAGE_FORMAT');
    const encrypted = Buffer.from(good);
    encrypted.writeUInt16LE(0x0801, encrypted.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])) + 8);
    refused(encrypted, 'THAW_E_PACKAGE_ENTRY_UNSUPPORTED');
    refused(zipEntries([file('a.js'), file('./a.js')]), 'THAW_E_PACKAGE_FORMAT');
    refused(Buffer.from('definitely not an archive'), 'THAW_E_PACKAGE_FORMAT');
    refused(Buffer.alloc(0), 'THAW_E_PACKAGE_MISSING');
    refused(zipEntries([file('fifo', '', 0o010644)]), 'THAW_E_PACKAGE_ENTRY_UNSUPPORTED');
  });

  test('archives made by the system zip tool round-trip, and zipDirectory keeps links and modes', async () => {
    const src = fresh();
    mkdirSync(join(src, 'lib'), { recursive: true });
    writeFileSync(join(src, 'index.mjs'), 'export const handler = async () => 1;');
    writeFileSync(join(src, 'lib', 'tool.sh'), '#!/bin/sh\n', { mode: 0o755 });
    symlinkSync('lib/tool.sh', join(src, 'tool'));
    const zipPath = join(work, `sys${seq++}.zip`);
    execFileSync('zip', ['-qry', zipPath, '.'], { cwd: src });
    for (const bytes of [readFileSync(zipPath), await zipDirectory(src)]) {
      const dir = fresh();
      await extractPackage(bytes, dir, defaultPackageLimits);
      assert.equal(readFileSync(join(dir, 'index.mjs'), 'utf8'), 'export const handler = async () => 1;');
      assert.equal(statSync(join(dir, 'lib/tool.sh')).mode & 0o111, 0o111);
      assert.equal(readlinkSync(join(dir, 'tool')), 'lib/tool.sh');
    }
    const seen: number[] = [];
    await zipDirectory(src, { onProgress: (done) => seen.push(done) });
    assert.equal(seen.at(-1), readFileSync(join(src, 'index.mjs')).length + 10, 'progress ends at the total bytes');
  });
});

describe('zip edge cases', () => {
  test('a ZIP64 archive (zip -fz) is read', () => {
    const src = fresh();
    mkdirSync(src);
    writeFileSync(join(src, 'index.js'), 'exports.handler = 1;\n');
    const zipPath = join(work, `z64-${seq++}.zip`);
    execFileSync('zip', ['-q', '-fz', zipPath, 'index.js'], { cwd: src });
    const bytes = readFileSync(zipPath);
    assert.notEqual(bytes.indexOf(Buffer.from([0x50, 0x4b, 0x06, 0x07])), -1, 'zip wrote a ZIP64 locator');
    const pkg = readPackage(bytes, defaultPackageLimits);
    assert.deepEqual(pkg.entries.map((e) => [e.path, e.read().toString()]), [['index.js', 'exports.handler = 1;\n']]);
  });

  test('an empty zip is a package with no entries', () => {
    const empty = zipEntries([]);
    assert.equal(empty.readUInt32LE(0), 0x06054b50);
    assert.deepEqual(readPackage(empty, defaultPackageLimits).entries, []);
  });

  test('readPackage checks every entry\'s data itself: a bad CRC is refused before any read()', () => {
    const good = zipEntries([file('a.txt', 'stored because short')]);
    const badCrc = Buffer.from(good);
    badCrc[30 + 'a.txt'.length] ^= 0xff;
    refused(badCrc, 'THAW_E_PACKAGE_FORMAT');
  });

  test('a link whose target passes through other links is resolved as the kernel would', () => {
    // l1 -> l2/l3/.. looks like "l2", but l2/l3 is the package root, so l1 is the root's parent.
    refused(zipEntries([file('sub/'), file('l2', 'sub', 0o120777), file('sub/l3', '..', 0o120777), file('l1', 'l2/l3/..', 0o120777)]), 'THAW_E_PACKAGE_LINK_UNSAFE');
    refused(zipEntries([file('a', 'b', 0o120777), file('b', 'a', 0o120777)]), 'THAW_E_PACKAGE_LINK_UNSAFE');
    const ok = readPackage(zipEntries([file('sub/'), file('sub/x.js'), file('l2', 'sub', 0o120777), file('l1', 'l2/x.js', 0o120777)]), defaultPackageLimits);
    assert.equal(ok.entries.filter((e) => e.type === 'symlink').length, 2);
    refused(zipEntries([file('long', 'a/'.repeat(3000), 0o120777)]), 'THAW_E_PACKAGE_LINK_UNSAFE');
  });

  test('an entry below a file is refused before extraction', () => {
    refused(zipEntries([file('a.js'), file('a.js/b.js')]), 'THAW_E_PACKAGE_FORMAT');
  });

  test('extraction accepts an empty existing directory and refuses a non-empty one without touching it', async () => {
    const zip = zipEntries([file('index.js', 'exports.handler = 1;')]);
    const empty = fresh();
    mkdirSync(empty);
    assert.equal((await extractPackage(zip, empty, defaultPackageLimits)).files, 1);
    const busy = fresh();
    mkdirSync(busy);
    writeFileSync(join(busy, 'keep'), 'mine');
    await assert.rejects(extractPackage(zip, busy, defaultPackageLimits), rejects('THAW_E_INTERNAL'));
    assert.equal(readFileSync(join(busy, 'keep'), 'utf8'), 'mine');
  });

  test('a failed extraction of a damaged entry removes the whole directory', async () => {
    const zip = zipEntries([file('a.js', 'fine'), { path: 'b.bin', data: Buffer.alloc(4000, 7) }]);
    const cd = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    const second = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), cd + 4);
    zip.writeUInt32LE(0x12345678, second + 16); // wrong CRC for b.bin, found only when it is inflated
    const dir = fresh();
    await assert.rejects(extractPackage(zip, dir, defaultPackageLimits), rejects('THAW_E_PACKAGE_FORMAT'));
    assert.equal(existsSync(dir), false);
  });
});

describe('tgz packages', () => {
  test('tar made by the system tool round-trips', async () => {
    const src = fresh();
    mkdirSync(join(src, 'deep', 'er'), { recursive: true });
    const long = 'n'.repeat(120);
    writeFileSync(join(src, 'deep', 'er', `${long}.js`), 'long name');
    writeFileSync(join(src, 'index.js'), 'exports.handler = async () => 1;');
    symlinkSync('index.js', join(src, 'alias.js'));
    const tgzPath = join(work, `sys${seq++}.tgz`);
    execFileSync('tar', ['czf', tgzPath, '-C', src, '.']);
    const dir = fresh();
    const out = await extractPackage(readFileSync(tgzPath), dir, defaultPackageLimits);
    assert.equal(out.format, 'tgz');
    assert.equal(readFileSync(join(dir, 'deep', 'er', `${long}.js`), 'utf8'), 'long name', 'GNU/pax long names');
    assert.equal(readlinkSync(join(dir, 'alias.js')), 'index.js');
  });

  test('pax long names and base-256 sizes are read', async () => {
    const src = fresh();
    const deep = join(src, 'p'.repeat(90), 'q'.repeat(90));
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, `${'r'.repeat(150)}.js`), 'pax');
    const tgzPath = join(work, `pax${seq++}.tgz`);
    execFileSync('tar', ['--format=pax', '-czf', tgzPath, '-C', src, '.']);
    const pkg = readPackage(readFileSync(tgzPath), defaultPackageLimits);
    const f = pkg.entries.find((e) => e.type === 'file')!;
    assert.equal(f.path, `${'p'.repeat(90)}/${'q'.repeat(90)}/${'r'.repeat(150)}.js`);
    assert.equal(f.read().toString(), 'pax');

    const raw = gunzipSync(tgz([{ name: 'b256.js', data: 'hello' }]));
    raw.fill(0, 124, 136);
    raw[124] = 0x80;
    raw[135] = 5;
    raw.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += raw[i];
    raw.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    const b256 = readPackage(gzipSync(raw), defaultPackageLimits);
    assert.equal(b256.entries[0].read().toString(), 'hello');
  });

  test('hard links become copies of earlier files; links to nothing or outside are refused', async () => {
    const dir = fresh();
    await extractPackage(tgz([{ name: 'a.js', data: 'A' }, { name: 'b.js', type: '1', link: 'a.js' }]), dir, defaultPackageLimits);
    assert.equal(readFileSync(join(dir, 'b.js'), 'utf8'), 'A');
    refused(tgz([{ name: 'b.js', type: '1', link: '../../etc/passwd' }]), 'THAW_E_PACKAGE_LINK_UNSAFE');
    refused(tgz([{ name: 'b.js', type: '1', link: 'later.js' }, { name: 'later.js' }]), 'THAW_E_PACKAGE_LINK_UNSAFE');
    refused(tgz([{ name: 'up', type: '2', link: '../outside' }]), 'THAW_E_PACKAGE_LINK_UNSAFE');
  });

  test('traversal, devices, FIFOs, damage and bombs are refused', () => {
    refused(tgz([{ name: '../evil.js' }]), 'THAW_E_PACKAGE_PATH_UNSAFE');
    refused(tgz([{ name: '/abs.js' }]), 'THAW_E_PACKAGE_PATH_UNSAFE');
    refused(tgz([{ name: 'fifo', type: '6' }]), 'THAW_E_PACKAGE_ENTRY_UNSUPPORTED');
    refused(tgz([{ name: 'dev', type: '3' }]), 'THAW_E_PACKAGE_ENTRY_UNSUPPORTED');
    refused(tgz([{ name: 'a.js' }], { corruptChecksum: true }), 'THAW_E_PACKAGE_FORMAT');
    refused(tgz([{ name: 'a.js' }], { noEnd: true }), 'THAW_E_PACKAGE_FORMAT');
    refused(gzipSync(Buffer.alloc(80 * 1024 * 1024)), 'THAW_E_PACKAGE_UNPACKED_TOO_LARGE', { ...defaultPackageLimits, maxUnpackedBytes: 10 * 1024 * 1024 });
    refused(tgz([{ name: 'zeros', data: '\0'.repeat(20 * 1024 * 1024) }]), 'THAW_E_PACKAGE_BOMB');
  });
});

describe('handlers', () => {
  test('parseHandler splits at the last dot and refuses malformed handlers', () => {
    assert.deepEqual(parseHandler('index.handler'), { module: 'index', exportName: 'handler' });
    assert.deepEqual(parseHandler('src/app.v2.main'), { module: 'src/app.v2', exportName: 'main' });
    for (const bad of ['index', '.handler', 'index.', '../x.handler', '/abs.handler', 'a//b.h', 'in dex.h', 'index.1abc']) {
      assert.throws(() => parseHandler(bad), rejects('THAW_E_HANDLER_INVALID'), bad);
    }
  });

  const pkgDir = (files: Record<string, string>) => {
    const dir = fresh();
    for (const [p, text] of Object.entries(files)) {
      mkdirSync(join(dir, p, '..'), { recursive: true });
      writeFileSync(join(dir, p), text);
    }
    return dir;
  };

  test('resolveHandlerFile finds each extension and decides the module format as Node does', async () => {
    const dir = pkgDir({
      'a.mjs': '', 'b.cjs': '', 'c.ts': 'export const h = 1;', 'd.js': 'exports.h = 1;', 'e.js': 'export const h = 1;',
      'm/package.json': '{"type":"module"}', 'm/f.js': 'const x = 1;',
    });
    assert.deepEqual((await resolveHandlerFile(dir, 'a.h')).format, 'esm');
    assert.deepEqual((await resolveHandlerFile(dir, 'b.h')).format, 'cjs');
    assert.deepEqual((await resolveHandlerFile(dir, 'c.h')).format, 'esm');
    assert.deepEqual((await resolveHandlerFile(dir, 'd.h')).format, 'cjs');
    assert.deepEqual((await resolveHandlerFile(dir, 'e.h')).format, 'esm', 'module syntax without "type"');
    assert.deepEqual((await resolveHandlerFile(dir, 'm/f.h')).format, 'esm', 'package.json type: module');
    await assert.rejects(resolveHandlerFile(dir, 'missing.h'), (e: unknown) => isThawError(e) && e.code === 'THAW_E_HANDLER_FILE_MISSING' && e.message.includes('missing.mjs'));
  });

  test('resolveHandlerFile prefers .js, then .mjs, .cjs, .ts, and refuses files reached through links leaving the package', async () => {
    const dir = pkgDir({ 'both.js': 'exports.h = 1;', 'both.mjs': 'export const h = 1;', 'only.cts': 'exports.h = 1;', 'only.mts': 'export const h = 1;' });
    assert.equal((await resolveHandlerFile(dir, 'both.h')).file, join(dir, 'both.js'));
    assert.deepEqual(await resolveHandlerFile(dir, 'only.h'), { file: join(dir, 'only.mts'), format: 'esm' });
    const outside = pkgDir({ 'secret.js': 'exports.h = 1;' });
    symlinkSync(join(outside, 'secret.js'), join(dir, 'escape.js'));
    await assert.rejects(resolveHandlerFile(dir, 'escape.h'), rejects('THAW_E_HANDLER_FILE_MISSING'));
    mkdirSync(join(dir, 'folder.js'));
    await assert.rejects(resolveHandlerFile(dir, 'folder.h'), rejects('THAW_E_HANDLER_FILE_MISSING'));
  });

  test('an ES module that parses but exports nothing lacks the handler; CommonJS via package.json type is read as such', async () => {
    const dir = pkgDir({
      'quiet.mjs': 'console.log(1);',
      'c/package.json': '{"type":"commonjs"}', 'c/h.js': 'exports.handler = 1;',
      'deep/index.mjs': "export * from './a/b.mjs';", 'deep/a/b.mjs': "export { handler } from '../c.mjs';", 'deep/c.mjs': 'export const handler = 1;',
      'pkgstar.mjs': "export * from 'some-package';",
    });
    await assert.rejects(checkHandlerExport(dir, 'quiet.handler'), /exports nothing/);
    await checkHandlerExport(dir, 'c/h.handler');
    await assert.rejects(checkHandlerExport(dir, 'c/h.other'), rejects('THAW_E_HANDLER_EXPORT_MISSING'));
    await checkHandlerExport(dir, 'deep/index.handler');
    await checkHandlerExport(dir, 'pkgstar.anything');
  });

  test('checkHandlerExport reads exports statically and accepts what it cannot know', async () => {
    const dir = pkgDir({
      'esm.mjs': 'export const handler = async () => 1; export function other() {}',
      'star.mjs': "export * from './impl.mjs';", 'impl.mjs': 'export const handler = 1;',
      'typed.ts': 'interface E { a: number }\nexport const handler = async (e: E): Promise<number> => e.a;',
      'cjs.js': 'exports.handler = async () => 1;',
      'obj.js': 'module.exports = { handler: async () => 1 };',
      'reexp.js': "module.exports = require('./lib/impl');", 'lib/impl.js': 'exports.handler = 1;',
      'computed.js': 'module.exports = make(); function make() { return { handler() {} }; }',
      'broken.mjs': 'export const handler = (;',
    });
    await checkHandlerExport(dir, 'esm.handler');
    await checkHandlerExport(dir, 'star.handler');
    await checkHandlerExport(dir, 'typed.handler');
    await checkHandlerExport(dir, 'cjs.handler');
    await checkHandlerExport(dir, 'obj.handler');
    await checkHandlerExport(dir, 'reexp.handler');
    await checkHandlerExport(dir, 'computed.handler');
    await checkHandlerExport(dir, 'broken.handler');
    for (const h of ['esm.nope', 'star.nope', 'typed.nope', 'cjs.nope', 'obj.nope', 'reexp.nope']) {
      await assert.rejects(checkHandlerExport(dir, h), rejects('THAW_E_HANDLER_EXPORT_MISSING'), h);
    }
    await assert.rejects(checkHandlerExport(dir, 'esm.nope'), /exports handler, other/);
  });
});

describe('blob store, node cache and ingest', () => {
  const limits = defaultPackageLimits;
  const good = zipEntries([file('index.mjs', 'export const handler = async () => 42;')]);
  const setup = () => {
    const root = fresh();
    return { root, blobs: new BlobStore(join(root, 'blobs')), cache: new CodeCache(join(root, 'cache')) };
  };
  const listing = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String).sort() : []);

  test('blobs are content-addressed, deduplicated and verified', async () => {
    const { blobs } = setup();
    const a = await blobs.put(good);
    assert.deepEqual(a, { sha256: sha256(good), size: good.length, created: true });
    assert.equal((await blobs.put(good)).created, false);
    assert.deepEqual(await blobs.list(), [a.sha256]);
    assert.deepEqual(await blobs.get(a.sha256), good);
    writeFileSync(blobs.path(a.sha256), 'tampered');
    await assert.rejects(blobs.get(a.sha256), /damaged/);
    await blobs.delete(a.sha256);
    await blobs.delete(a.sha256);
    assert.equal(await blobs.has(a.sha256), false);
  });

  test('ingest stores the blob and the unpacked tree; a second ingest of the same bytes dedupes', async () => {
    const { blobs, cache } = setup();
    const first = await ingestPackage({ bytes: good, handler: 'index.handler', blobs, cache, limits });
    assert.equal(first.handlerFile, 'index.mjs');
    assert.equal(first.format, 'zip');
    assert.ok(cache.has(first.sha256));
    const second = await ingestPackage({ bytes: good, handler: 'index.handler', blobs, cache, limits });
    assert.equal(second.dir, first.dir);
    // With squashfs-tools, the tree's image too: one tree gives one image, so it dedupes like the package.
    assert.equal(second.image?.sha256, first.image?.sha256);
    assert.deepEqual(await blobs.list(), [first.sha256, ...(first.image ? [first.image.sha256] : [])].sort());
    const tree = basename(cache.pathOf(first.sha256));
    assert.deepEqual(listing(cache.dir), [tree, `${tree}/index.mjs`], 'no temporary directories are left');
  });

  test('a refused package leaves no blob, no cache entry and no temporary directory', async () => {
    const { root, blobs, cache } = setup();
    const cases: [Buffer, string, ErrorCode][] = [
      [zipEntries([file('../evil.js')]), 'index.handler', 'THAW_E_PACKAGE_PATH_UNSAFE'],
      [good, 'main.handler', 'THAW_E_HANDLER_FILE_MISSING'],
      [good, 'index.other', 'THAW_E_HANDLER_EXPORT_MISSING'],
      [good, 'not a handler', 'THAW_E_HANDLER_INVALID'],
      [Buffer.from('junk'), 'index.handler', 'THAW_E_PACKAGE_FORMAT'],
    ];
    for (const [bytes, handler, code] of cases) {
      await assert.rejects(ingestPackage({ bytes, handler, blobs, cache, limits }), rejects(code), code);
    }
    assert.deepEqual(await blobs.list(), []);
    assert.deepEqual(listing(cache.dir), []);
    assert.deepEqual(listing(join(root, 'blobs')).filter((p) => !/^[0-9a-f]{2}$/.test(p)), []);
  });

  test('ingest checks the size first, and never deletes a blob that was already stored', async () => {
    const { blobs, cache } = setup();
    await assert.rejects(ingestPackage({ bytes: good, handler: 'not valid', blobs, cache, limits: { ...limits, maxPackageBytes: 10 } }), rejects('THAW_E_PACKAGE_TOO_LARGE'));
    const { sha256: hash } = await blobs.put(good);
    await assert.rejects(ingestPackage({ bytes: good, handler: 'index.other', blobs, cache, limits }), rejects('THAW_E_HANDLER_EXPORT_MISSING'));
    assert.equal(await blobs.has(hash), true);
    assert.deepEqual(listing(cache.dir), []);
  });

  test('of concurrent puts of the same bytes exactly one creates the blob', async () => {
    const { blobs } = setup();
    const puts = await Promise.all([1, 2, 3, 4].map(() => blobs.put(good)));
    assert.equal(puts.filter((p) => p.created).length, 1);
    assert.deepEqual(readdirSync(join(blobs.dir, sha256(good).slice(0, 2))), [sha256(good)], 'no temporary files left');
    assert.equal(await blobs.has('not-a-hash'), false);
    await assert.rejects(blobs.get('0'.repeat(64)), rejects('THAW_E_INTERNAL'));
  });

  test('concurrent misses fetch and unpack once; timings come from the injected clock', async () => {
    const root = fresh();
    const blobs = new BlobStore(join(root, 'blobs'));
    const { sha256: hash } = await blobs.put(good);
    let gets = 0;
    const counting = Object.assign(Object.create(blobs) as BlobStore, { get: (h: string) => { gets++; return blobs.get(h); } });
    let t = 0;
    const cache = new CodeCache(join(root, 'cache'), { monotonic: () => (t += 5) });
    const results = await Promise.all([1, 2, 3].map(() => cache.ensure(hash, counting, limits)));
    assert.equal(gets, 1);
    assert.ok(results.every((r) => r.dir === results[0].dir && !r.hit));
    assert.equal(results[0].fetchMs, 5);
    assert.equal(results[0].unpackMs, 5);
    assert.deepEqual(readdirSync(join(root, 'cache')), [basename(cache.pathOf(hash))], 'the temporary unpack directory was renamed into place');
  });

  test('a tree is keyed by the package and the compiler: another compiler tag never finds it', async () => {
    const { cache } = setup();
    const sha = 'a'.repeat(64);
    assert.equal(basename(cache.pathOf(sha)), createHash('sha256').update(`${sha}:${compilerTag()}`).digest('hex'));
    assert.notEqual(basename(cache.pathOf(sha)), sha);
  });

  test('the cache unpacks on a miss, answers hits at once, and shares one unpack between concurrent misses', async () => {
    const { blobs, cache } = setup();
    const { sha256: hash } = await blobs.put(good);
    const [a, b] = await Promise.all([cache.ensure(hash, blobs, limits), cache.ensure(hash, blobs, limits)]);
    assert.equal(a, b, 'both callers got the one unpack');
    assert.equal(a.hit, false);
    assert.ok(a.unpackMs >= 0 && a.fetchMs >= 0);
    const c = await cache.ensure(hash, blobs, limits);
    assert.deepEqual([c.hit, c.fetchMs, c.unpackMs], [true, 0, 0]);
    await cache.remove(hash);
    assert.equal(cache.has(hash), false);
    assert.equal((await cache.ensure(hash, blobs, limits)).hit, false, 'evicted code is unpacked again from the origin');
  });
});

describe('code cache bound', () => {
  test('least recently used packages are evicted beyond the bound, pinned ones never; evicted code comes back from the origin', async () => {
    const root = fresh();
    const blobs = new BlobStore(join(root, 'blobs'));
    const pkgOf = (n: number) => zipEntries([{ path: 'index.mjs', data: Buffer.from(`export const handler = () => ${n};\n${'//'.padEnd(40_000, 'x')}`) }]);
    const shas = await Promise.all([1, 2, 3].map(async (n) => (await blobs.put(pkgOf(n))).sha256));
    const cache = new CodeCache(join(root, 'cache'), { maxBytes: 90_000 });
    await cache.ensure(shas[0], blobs, defaultPackageLimits);
    cache.pin(shas[0]);
    await cache.ensure(shas[1], blobs, defaultPackageLimits);
    await cache.ensure(shas[2], blobs, defaultPackageLimits);
    await cache.evictionsSettled();
    assert.equal(cache.has(shas[0]), true, 'pinned: in use by an instance');
    assert.equal(cache.has(shas[1]), false, 'least recently used unpinned package evicted');
    assert.equal(cache.has(shas[2]), true);
    assert.equal(cache.stats().evictions, 1);
    const again = await cache.ensure(shas[1], blobs, defaultPackageLimits);
    assert.equal(again.hit, false, 'refetched and unpacked from the origin');
    assert.equal(readFileSync(join(again.dir, 'index.mjs'), 'utf8').slice(0, 30), 'export const handler = () => 2');
    const s = cache.stats();
    assert.deepEqual([s.hits, s.misses], [0, 4]);
    await cache.ensure(shas[1], blobs, defaultPackageLimits);
    assert.equal(cache.stats().hitRate, 1 / 5);
  });
});
