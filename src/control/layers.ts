// Control of layers: publishing (validated and content-addressed like packages), reading, listing and
// deleting layer versions, their permission statements, the Layers a function names (resolved to the
// content each version keeps), and the built-in layers Thaw makes from its own dependencies at start.
// Imports src/core, src/store, src/codestore and node built-ins.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Clock } from '../core/clock.ts';
import { ThawError } from '../core/errors.ts';
import { ACCOUNT_ID, layerArn, parseLayerVersionArn } from '../core/arn.ts';
import type { LayerPermission, LayerRef, LayerVersion } from '../core/types.ts';
import type { Store } from '../store/index.ts';
import { ingestLayer, zipEntries, sha256, type Origin, type CodeCache, type PackageLimits, type ZipInput } from '../codestore/index.ts';
import { collectUnused } from './collect.ts';

/** Lambda's limit of layers per function. */
const MAX_LAYERS = 5;
const LAYER_NAME = /^[A-Za-z0-9_-]{1,140}$/;
const LAYER_NAME_ARN = /^arn:[a-z-]+:lambda:([a-z0-9-]+):(\d{12}):layer:([A-Za-z0-9_-]{1,140})$/;
const RUNTIME_NAME = /^(nodejs|python|java|dotnet|ruby|go|provided)[a-z0-9.]{0,24}$/;
const ARCHITECTURES = ['x86_64', 'arm64'];
const STATEMENT_ID = /^[A-Za-z0-9_-]{1,100}$/;

export interface LayersOptions {
  store: Store;
  blobs: Origin;
  cache: CodeCache;
  limits: PackageLimits;
  clock: Clock;
  /** The region in this Thaw's ARNs. */
  region: string;
  /** The node_modules the built-in layers are made from; null: none. Default: Thaw's own. */
  builtinsFrom?: string | null;
}

const THAW_NODE_MODULES = fileURLToPath(new URL('../../node_modules', import.meta.url));

export interface PublishLayerInput {
  name: string;
  zip: Buffer | undefined;
  description?: string;
  compatibleRuntimes?: unknown;
  compatibleArchitectures?: unknown;
  licenseInfo?: string;
}

/** Filters of ListLayers and ListLayerVersions. */
export interface LayerFilter { runtime?: string | null; architecture?: string | null }

/** A built-in layer: an npm package of Thaw's own install, with its dependencies, under nodejs/node_modules. */
const BUILTIN_LAYER_PACKAGES = ['zod', '@middy/core', 'hono', '@aws-lambda-powertools/logger'] as const;
const builtinLayerName = (pkg: string) => `thaw-${pkg.replace(/^@/, '').replace(/\//g, '-')}`;

export class Layers {
  readonly #o: LayersOptions;
  #builtins: Promise<unknown> | null = null;

  constructor(options: LayersOptions) { this.#o = options; }

  /**
   * Makes sure the built-in layers exist before any layer is read or named: they are made on the first
   * use of layers after `thaw up` (once per data dir, 0.2-0.4 s for the four here; then a lookup), so a
   * node that never uses layers never reads those files. A failure is reported, never the caller's.
   */
  ready(): Promise<unknown> {
    const from = this.#o.builtinsFrom === undefined ? THAW_NODE_MODULES : this.#o.builtinsFrom;
    if (from === null) return Promise.resolve();
    return this.#builtins ??= this.ensureBuiltins(from).catch((err) => {
      this.#builtins = null;
      process.stderr.write(`thaw: could not make the built-in layers: ${(err as Error).message}\n`);
    });
  }

  /** A layer's name from a path: the name itself, or the layer's ARN (the SDK accepts both). */
  layerName(ref: string): string {
    const arn = LAYER_NAME_ARN.exec(ref);
    if (arn) {
      this.#checkOurs(arn[1], arn[2], ref);
      return arn[3];
    }
    if (!LAYER_NAME.test(ref)) throw new ThawError('THAW_E_LAYER_INVALID', `LayerName ${JSON.stringify(ref)} is not valid: use 1-140 letters, digits, hyphens or underscores, or the layer's ARN`);
    return ref;
  }

  /** A layer version's ARN; with a name alone, the layer's. */
  arnOf(v: Pick<LayerVersion, 'name'> & { version?: number }): string { return layerArn(this.#o.region, v.name, v.version); }

  async publish(input: PublishLayerInput): Promise<LayerVersion> {
    const name = this.layerName(input.name);
    await this.ready();
    const fields = {
      description: checkText(input.description, 'Description', 256),
      compatibleRuntimes: checkList(input.compatibleRuntimes, 'CompatibleRuntimes', 15, (r) => RUNTIME_NAME.test(r), 'a Lambda runtime identifier such as nodejs22.x'),
      compatibleArchitectures: checkList(input.compatibleArchitectures, 'CompatibleArchitectures', 2, (a) => ARCHITECTURES.includes(a), 'x86_64 or arm64'),
      licenseInfo: input.licenseInfo === undefined ? null : checkText(input.licenseInfo, 'LicenseInfo', 512),
    };
    if (!input.zip || input.zip.length === 0) throw new ThawError('THAW_E_PACKAGE_MISSING', 'no layer content was given: Content.ZipFile must hold the base64 of a .zip (or .tgz)');
    const pkg = await ingestLayer({ bytes: input.zip, blobs: this.#o.blobs, cache: this.#o.cache, limits: this.#o.limits });
    try {
      return await this.#o.store.publishLayerVersion({ name, ...fields, codeSha256: pkg.sha256, codeSize: pkg.size, createdAt: this.#o.clock.now() });
    } catch (err) {
      await this.#collect(pkg.sha256);
      throw err;
    }
  }

  async get(ref: string, version: number): Promise<LayerVersion> {
    const name = this.layerName(ref);
    await this.ready();
    const v = Number.isSafeInteger(version) && version > 0 ? await this.#o.store.getLayerVersion(name, version) : null;
    if (!v) throw new ThawError('THAW_E_LAYER_NOT_FOUND', `layer version ${layerArn(this.#o.region, name, version)} does not exist`);
    return v;
  }

  async getByArn(arn: string): Promise<LayerVersion> {
    const p = parseLayerVersionArn(arn);
    if (!p) throw new ThawError('THAW_E_LAYER_INVALID', `Arn ${JSON.stringify(arn)} is not a layer version ARN (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)`);
    this.#checkOurs(p.region, p.account, arn);
    return this.get(p.name, p.version);
  }

  /** Each layer with its newest version that matches the filter (ListLayers), by name. */
  async list(filter: LayerFilter): Promise<LayerVersion[]> {
    await this.ready();
    const newest = new Map<string, LayerVersion>();
    for (const v of await this.#o.store.listLayerVersions()) if (!newest.has(v.name) && matches(v, filter)) newest.set(v.name, v);
    return [...newest.values()];
  }

  /** A layer's versions that match the filter, newest first (none for a layer that does not exist, as on Lambda). */
  async listVersions(ref: string, filter: LayerFilter): Promise<LayerVersion[]> {
    await this.ready();
    return (await this.#o.store.listLayerVersions(this.layerName(ref))).filter((v) => matches(v, filter));
  }

  /**
   * Deletes a layer version (idempotent, as on Lambda). Function versions that use it keep it: they hold its
   * content, which stays until none does.
   */
  async delete(ref: string, version: number): Promise<void> {
    const name = this.layerName(ref);
    await this.ready();
    const v = await this.#o.store.getLayerVersion(name, version);
    if (!v) return;
    await this.#o.store.deleteLayerVersion(name, version);
    await this.#collect(v.codeSha256);
  }

  /**
   * A function's Layers (version ARNs, in order) as the version will hold them. An ARN the function already
   * has is kept even if its layer version was deleted since (a deploy tool sends the list back unchanged).
   */
  async resolveRefs(arns: unknown, current: readonly LayerRef[] = []): Promise<LayerRef[]> {
    if (!Array.isArray(arns) || arns.some((a) => typeof a !== 'string')) throw new ThawError('THAW_E_LAYER_INVALID', 'Layers must be a list of layer version ARNs');
    if (arns.length > MAX_LAYERS) throw new ThawError('THAW_E_LAYER_INVALID', `Layers names ${arns.length} layer versions; a function can use at most ${MAX_LAYERS}`);
    if (arns.length) await this.ready();
    const seen = new Set<string>();
    const refs: LayerRef[] = [];
    for (const arn of arns as string[]) {
      const p = parseLayerVersionArn(arn);
      if (!p) throw new ThawError('THAW_E_LAYER_INVALID', `Layers: ${JSON.stringify(arn)} is not a layer version ARN (arn:aws:lambda:${this.#o.region}:${ACCOUNT_ID}:layer:NAME:VERSION)`);
      if (p.region !== this.#o.region || p.account !== ACCOUNT_ID) throw new ThawError('THAW_E_LAYER_INVALID', `Layers: ${arn} is not a layer of this Thaw (region ${this.#o.region}, account ${ACCOUNT_ID})`);
      if (seen.has(p.name)) throw new ThawError('THAW_E_LAYER_INVALID', `Layers names layer ${p.name} twice; a function uses one version of each layer`);
      seen.add(p.name);
      const kept = current.find((r) => r.arn === arn);
      if (kept) { refs.push(kept); continue; }
      const v = await this.#o.store.getLayerVersion(p.name, p.version);
      if (!v) throw new ThawError('THAW_E_LAYER_INVALID', `Layers: layer version ${arn} does not exist; ListLayerVersions shows the versions of ${p.name}`);
      refs.push({ arn, codeSha256: v.codeSha256, codeSize: v.codeSize });
    }
    return refs;
  }

  // Layer version policies. Thaw has one account, so a statement grants nothing that is not already
  // allowed; they are stored and returned as Lambda does, so templates that declare them deploy unchanged.

  async addPermission(ref: string, version: number, input: { statementId?: string; action?: string; principal?: string; organizationId?: string; revisionId?: string }): Promise<{ statement: string; revisionId: string }> {
    const v = await this.get(ref, version);
    if (!input.statementId || !STATEMENT_ID.test(input.statementId)) throw new ThawError('THAW_E_REQUEST_INVALID', 'StatementId is required: 1-100 letters, digits, hyphens or underscores');
    if (input.action !== 'lambda:GetLayerVersion') throw new ThawError('THAW_E_REQUEST_INVALID', `Action must be lambda:GetLayerVersion (the only action a layer grants), got ${JSON.stringify(input.action)}`);
    if (!input.principal || !/^(\d{12}|\*)$/.test(input.principal)) throw new ThawError('THAW_E_REQUEST_INVALID', `Principal must be an account id (12 digits) or *, got ${JSON.stringify(input.principal)}`);
    if (input.organizationId !== undefined && (input.principal !== '*' || !/^o-[a-z0-9]{10,32}$/.test(input.organizationId))) {
      throw new ThawError('THAW_E_REQUEST_INVALID', 'OrganizationId must look like o-xxxxxxxxxx and goes with Principal *');
    }
    await this.#checkRevision(v, input.revisionId);
    const p: LayerPermission = { layerName: v.name, version: v.version, statementId: input.statementId, action: input.action, principal: input.principal, organizationId: input.organizationId ?? null };
    await this.#o.store.addLayerPermission(p);
    const after = await this.#o.store.listLayerPermissions(v.name, v.version);
    return { statement: JSON.stringify(this.#statement(v, p)), revisionId: policyRevision(after) };
  }

  async getPolicy(ref: string, version: number): Promise<{ policy: string; revisionId: string }> {
    const v = await this.get(ref, version);
    const ps = await this.#o.store.listLayerPermissions(v.name, v.version);
    if (!ps.length) throw new ThawError('THAW_E_LAYER_POLICY_NOT_FOUND', `layer version ${this.arnOf(v)} has no policy`);
    return { policy: JSON.stringify({ Version: '2012-10-17', Id: 'default', Statement: ps.map((p) => this.#statement(v, p)) }), revisionId: policyRevision(ps) };
  }

  async removePermission(ref: string, version: number, statementId: string, revisionId?: string): Promise<void> {
    const v = await this.get(ref, version);
    await this.#checkRevision(v, revisionId);
    if (!(await this.#o.store.removeLayerPermission(v.name, v.version, statementId))) {
      throw new ThawError('THAW_E_LAYER_POLICY_NOT_FOUND', `layer version ${this.arnOf(v)} has no statement ${statementId}`);
    }
  }

  async #checkRevision(v: LayerVersion, revisionId: string | undefined) {
    if (revisionId === undefined) return;
    const now = policyRevision(await this.#o.store.listLayerPermissions(v.name, v.version));
    if (revisionId !== now) throw new ThawError('THAW_E_REVISION_MISMATCH', `the policy of ${this.arnOf(v)} is at revision ${now}, not ${revisionId}`);
  }

  #statement(v: LayerVersion, p: LayerPermission) {
    return {
      Sid: p.statementId, Effect: 'Allow',
      Principal: p.principal === '*' ? '*' : { AWS: `arn:aws:iam::${p.principal}:root` },
      Action: p.action, Resource: this.arnOf(v),
      ...(p.organizationId ? { Condition: { StringEquals: { 'aws:PrincipalOrgID': p.organizationId } } } : {}),
    };
  }

  /**
   * Publishes the built-in layers (BUILTIN_LAYER_PACKAGES) from Thaw's own node_modules, without network:
   * a package missing there (they are dependencies, so only a broken install) is skipped and reported. A layer whose
   * newest version already holds that package version is left as it is. Returns what it did, per layer.
   */
  async ensureBuiltins(nodeModules: string): Promise<{ name: string; version: number | null; note: string }[]> {
    const out: { name: string; version: number | null; note: string }[] = [];
    for (const pkg of BUILTIN_LAYER_PACKAGES) {
      const name = builtinLayerName(pkg);
      const version = packageVersion(nodeModules, pkg);
      if (!version) { out.push({ name, version: null, note: `${pkg} is not installed in ${nodeModules}` }); continue; }
      const description = `${pkg}@${version} and its dependencies, built into Thaw`;
      const newest = (await this.#o.store.listLayerVersions(name))[0];
      if (newest?.description === description) { out.push({ name, version: newest.version, note: 'up to date' }); continue; }
      const zip = zipEntries(layerFiles(nodeModules, pkg), { deflate: false });
      const v = await this.#publishBuiltin(name, zip, description);
      out.push({ name, version: v.version, note: `published ${pkg}@${version}` });
    }
    return out;
  }

  /**
   * A built-in layer's zip is made here from installed files: its blob is stored and its tree unpacked on
   * first use (cache.ensure), which keeps `thaw up` from extracting what no function may use.
   */
  async #publishBuiltin(name: string, zip: Buffer, description: string): Promise<LayerVersion> {
    const hash = sha256(zip);
    await this.#o.blobs.put(zip, hash);
    return this.#o.store.publishLayerVersion({
      name, description, compatibleRuntimes: ['nodejs20.x', 'nodejs22.x', 'nodejs24.x'], compatibleArchitectures: [], licenseInfo: 'MIT',
      codeSha256: hash, codeSize: zip.length, createdAt: this.#o.clock.now(),
    });
  }

  #checkOurs(region: string, account: string, arn: string) {
    if (region !== this.#o.region || account !== ACCOUNT_ID) throw new ThawError('THAW_E_LAYER_INVALID', `${arn} is not a layer of this Thaw (region ${this.#o.region}, account ${ACCOUNT_ID})`);
  }

  /** Content no layer version and no function version holds any more leaves the origin and the cache. */
  #collect(sha: string) { return collectUnused(this.#o, [sha]); }
}

const matches = (v: LayerVersion, f: LayerFilter) =>
  (!f.runtime || v.compatibleRuntimes.includes(f.runtime)) && (!f.architecture || v.compatibleArchitectures.includes(f.architecture));

/** A policy's revision: a digest of its statements, so it changes exactly when they do. */
function policyRevision(ps: readonly LayerPermission[]): string {
  const h = createHash('sha256').update(JSON.stringify(ps)).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function checkText(v: unknown, field: string, max: number): string {
  if (v === undefined) return '';
  if (typeof v !== 'string' || v.length > max) throw new ThawError('THAW_E_REQUEST_INVALID', `${field} must be a string of at most ${max} characters`);
  return v;
}

function checkList(v: unknown, field: string, max: number, ok: (s: string) => boolean, what: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > max) throw new ThawError('THAW_E_REQUEST_INVALID', `${field} must be a list of at most ${max} values`);
  for (const s of v) if (typeof s !== 'string' || !ok(s)) throw new ThawError('THAW_E_REQUEST_INVALID', `${field}: ${JSON.stringify(s)} is not ${what}`);
  return [...new Set(v as string[])];
}

function packageVersion(nodeModules: string, pkg: string): string | null {
  const file = join(nodeModules, pkg, 'package.json');
  if (!existsSync(file)) return null;
  return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? null;
}

/**
 * The package and everything it depends on (production dependencies, found as Node would from its
 * directory), as zip entries under nodejs/node_modules/, the path Lambda's NODE_PATH reads in /opt.
 * Read synchronously: it runs at start, before the server listens, and a thousand small async reads
 * took 10× longer (210 ms against ~20 for zod's 840 files, measured).
 */
function layerFiles(nodeModules: string, pkg: string): ZipInput[] {
  const dirs = new Set<string>();
  const visit = (dir: string) => {
    if (dirs.has(dir)) return;
    dirs.add(dir);
    const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    for (const dep of Object.keys(meta.dependencies ?? {})) {
      // Nested first (a version of its own), then the top level, as require() looks.
      const found = [join(dir, 'node_modules', dep), join(nodeModules, dep)].find((d) => existsSync(join(d, 'package.json')));
      if (!found) throw new ThawError('THAW_E_INTERNAL', `built-in layer ${pkg}: its dependency ${dep} is not installed`);
      visit(found);
    }
  };
  visit(join(nodeModules, pkg));
  const files = new Map<string, ZipInput>();
  for (const dir of [...dirs].sort()) {
    for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      const abs = join(e.parentPath, e.name);
      const path = `nodejs/node_modules/${relative(nodeModules, abs).split(sep).join('/')}`;
      // Files only: a link in an installed package may point anywhere on this host.
      if (e.isFile()) files.set(path, { path, data: readFileSync(abs), mode: 0o100000 | (lstatSync(abs).mode & 0o777) });
    }
  }
  return [...files.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
}
