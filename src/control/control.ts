// Control: functions, versions, aliases and their configuration. Validates every input before anything is
// stored and leaves no partial state when a step fails. Imports src/core, src/store, src/codestore.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Clock } from '../core/clock.ts';
import { ThawError, isThawError } from '../core/errors.ts';
import { LATEST, type Alias, type AliasRouting, type FunctionConfig, type FunctionRecord, type FunctionVersion, type VpcConfig } from '../core/types.ts';
import type { Store } from '../store/index.ts';
import { checkHandlerExport, checkNotCallbackHandler, ingestPackage, parseHandler, resolveHandlerFile, type Ingested, type Origin, type CodeCache, type PackageLimits } from '../codestore/index.ts';
import { collectUnused, type PackageImage } from './collect.ts';
import { Layers } from './layers.ts';
import { defaultConfig, MAX_TAGS, parseOr, parseQualifier, routingSchema, validateAliasName, validateConfig, validateFunctionName, validateTagKey, validateTags, type ConfigInput } from './validate.ts';

export interface ControlOptions {
  store: Store;
  /** Called with every version publishVersion returns (new or unchanged). */
  onPublished?(v: FunctionVersion): void;
  blobs: Origin;
  cache: CodeCache;
  limits: PackageLimits;
  clock: Clock;
  /** Uniform [0,1) source for weighted alias routing; injectable so tests can pin it. */
  random?: () => number;
  /** The region in ARNs (layer version ARNs are checked against it); default us-east-1. */
  region?: string;
  /** Packages whose tree is smaller get no image (unpacked on a miss instead); default 0: every one. */
  minImageBytes?: number;
  /** Where the built-in layers come from (src/control/layers.ts); null: none. */
  builtinLayersFrom?: string | null;
}

export interface CreateFunctionInput extends ConfigInput {
  name: string;
  code: Buffer | undefined;
  publish?: boolean;
  /** Lambda's Tags, stored with the function in the same step. */
  tags?: Record<string, unknown>;
}

export interface Resolved {
  fn: FunctionRecord;
  version: FunctionVersion;
  /** What the caller asked for, normalized ($LATEST when nothing was given). */
  qualifier: string;
}

export interface AliasInput {
  functionVersion: string;
  description?: string;
  routing?: AliasRouting | null;
  revisionId?: string;
}

/** Picks the version a weighted alias sends one invocation to, given u uniform in [0,1). */
export function pickRoutedVersion(alias: Pick<Alias, 'functionVersion' | 'routing'>, u: number): string {
  return alias.routing && u < alias.routing.weight ? alias.routing.version : alias.functionVersion;
}

export class Control {
  #o: ControlOptions;
  #random: () => number;
  /** The last resolution of each name and qualifier invoked, for resolve() during a store outage. */
  #resolved = new Map<string, Resolved>();

  /** Layer versions and their policies; what functions' Layers name. */
  readonly layers: Layers;

  constructor(options: ControlOptions) {
    this.#o = options;
    this.#random = options.random ?? Math.random;
    this.layers = new Layers({ ...options, region: options.region ?? 'us-east-1', builtinsFrom: options.builtinLayersFrom });
  }

  get store() { return this.#o.store; }

  async createFunction(input: CreateFunctionInput): Promise<{ latest: FunctionVersion; published: FunctionVersion | null }> {
    const name = validateFunctionName(input.name);
    const { name: _n, code, publish, tags: tagsInput, layers: layersInput, ...configInput } = input;
    const tags = tagsInput === undefined ? {} : validateTags(tagsInput);
    const cfg = { ...defaultConfig, ...validateConfig({ runtime: 'nodejs24.x', ...configInput }), ...(await this.#layers(layersInput, [])) };
    await this.#checkNetworks(cfg.vpc);
    if (await this.#o.store.getFunction(name)) throw new ThawError('THAW_E_FUNCTION_EXISTS', `function ${name} already exists`);
    const pkg = await this.#ingest(code, cfg.handler, cfg.runtime!);
    const now = this.#o.clock.now();
    const latest: FunctionVersion = {
      functionName: name, version: LATEST, revisionId: randomUUID(), createdAt: now,
      config: { ...cfg, runtime: cfg.runtime!, codeSha256: pkg.sha256, codeSize: pkg.size, ...imageOf(pkg) },
    };
    try {
      await this.#o.store.createFunction({ name, createdAt: now, updatedAt: now, latest, lastPublished: 0, reservedConcurrency: null }, tags);
    } catch (err) {
      await this.#collect([pkg.sha256], imagesOf(latest.config));
      throw err;
    }
    const published = publish ? await this.#publish(name, now) : null;
    return { latest, published };
  }

  /**
   * Replaces $LATEST's code. `handler` (a Thaw extension) changes the handler in the same step, so a deploy
   * that renames the handler file is checked against the new code, not the old.
   */
  async updateCode(name: string, code: Buffer | undefined, opts: { publish?: boolean; revisionId?: string; handler?: string } = {}) {
    const fn = await this.getFunction(name);
    const handler = opts.handler === undefined ? fn.latest.config.handler : validateConfig({ handler: opts.handler }).handler!;
    const pkg = await this.#ingest(code, handler, fn.latest.config.runtime);
    // codeImage always set (undefined: none), so new code never keeps the image of the code it replaces.
    const latest = await this.#replaceLatest(fn, { codeSha256: pkg.sha256, codeSize: pkg.size, handler, codeImage: pkg.image ?? undefined }, opts.revisionId, [pkg.sha256]);
    const published = opts.publish ? await this.#publish(name, this.#o.clock.now()) : null;
    return { latest, published };
  }

  async updateConfiguration(name: string, input: ConfigInput & { revisionId?: string }): Promise<FunctionVersion> {
    const fn = await this.getFunction(name);
    const { revisionId, layers, ...rest } = input;
    const patch = { ...validateConfig(rest), ...(await this.#layers(layers, fn.latest.config.layers)) };
    await this.#checkNetworks(patch.vpc);
    const handlerChanged = patch.handler !== undefined && patch.handler !== fn.latest.config.handler;
    if (handlerChanged || (patch.runtime !== undefined && patch.runtime !== fn.latest.config.runtime)) {
      const code = await this.#o.cache.ensure(fn.latest.config.codeSha256, this.#o.blobs, this.#o.limits);
      const handler = patch.handler ?? fn.latest.config.handler;
      if (handlerChanged) await checkHandlerExport(code.dir, handler);
      await checkNotCallbackHandler((await resolveHandlerFile(code.dir, handler)).file, parseHandler(handler).exportName, patch.runtime ?? fn.latest.config.runtime);
    }
    return this.#replaceLatest(fn, patch as Partial<FunctionConfig>, revisionId, []);
  }

  /** A config's `layers` from Layers as given (absent: unchanged; an empty list: none). */
  async #layers(input: unknown, current: FunctionConfig['layers']): Promise<Pick<FunctionConfig, 'layers'>> {
    if (input === undefined) return {};
    const refs = await this.layers.resolveRefs(input, current);
    return { layers: refs.length ? refs : undefined };
  }

  /** Every network and security group a VpcConfig names exists. */
  async #checkNetworks(vpc: VpcConfig | undefined) {
    for (const n of vpc?.networks ?? []) {
      if (!(await this.#o.store.getNetwork(n))) throw new ThawError('THAW_E_NETWORK_NOT_FOUND', `VpcConfig.SubnetIds names network ${n}, which does not exist; create it with \`thaw network create ${n} --subnet CIDR\``);
    }
    for (const g of vpc?.securityGroups ?? []) {
      if (!(await this.#o.store.getSecurityGroup(g))) throw new ThawError('THAW_E_SECURITY_GROUP_NOT_FOUND', `VpcConfig.SecurityGroupIds names security group ${g}, which does not exist; create it with \`thaw network sg create ${g} --allow CIDR[:PORTS]\``);
    }
  }

  async #replaceLatest(fn: FunctionRecord, patch: Partial<FunctionConfig>, expectedRevisionId: string | undefined, newCode: string[]) {
    const now = this.#o.clock.now();
    const latest: FunctionVersion = { ...fn.latest, revisionId: randomUUID(), createdAt: now, config: { ...fn.latest.config, ...patch } };
    try {
      await this.#o.store.updateLatest(fn.name, latest, now, expectedRevisionId);
    } catch (err) {
      await this.#collect(newCode, imagesOf(latest.config).filter((i) => newCode.includes(i.package)));
      throw err;
    }
    await this.#collect(contentOf(fn.latest.config).filter((s) => !contentOf(latest.config).includes(s)), imagesOf(fn.latest.config));
    return latest;
  }

  /** `codeSha256` (hex) publishes only if $LATEST still has that code; `description` is the version's own. */
  async publishVersion(name: string, opts: { revisionId?: string; codeSha256?: string; description?: string } = {}): Promise<FunctionVersion> {
    const fn = await this.getFunction(name);
    if (opts.revisionId && opts.revisionId !== fn.latest.revisionId) {
      throw new ThawError('THAW_E_REVISION_MISMATCH', `$LATEST of ${name} is at revision ${fn.latest.revisionId}, not ${opts.revisionId}`);
    }
    if (opts.codeSha256 !== undefined && opts.codeSha256 !== fn.latest.config.codeSha256) {
      throw new ThawError('THAW_E_REVISION_MISMATCH', `CodeSha256 names other code than $LATEST of ${name} has now; publish again with the CodeSha256 GetFunction reports`);
    }
    if (opts.description !== undefined) validateConfig({ description: opts.description });
    return this.#publish(name, this.#o.clock.now(), opts.description);
  }

  /** A function's tags; TagResource merges, UntagResource removes keys. */
  async listTags(name: string): Promise<Record<string, string>> {
    const tags = await this.#o.store.getTags(validateFunctionName(name));
    if (!tags) throw new ThawError('THAW_E_FUNCTION_NOT_FOUND', `function ${name} does not exist`);
    return tags;
  }

  async tagFunction(name: string, tags: Record<string, unknown>): Promise<void> {
    await this.#o.store.tagFunction(validateFunctionName(name), validateTags(tags), MAX_TAGS);
  }

  async untagFunction(name: string, keys: readonly unknown[]): Promise<void> {
    await this.#o.store.untagFunction(validateFunctionName(name), keys.map((k) => validateTagKey(k)));
  }

  /** Publishes $LATEST and tells the platform (snapshots are built for new versions). */
  async #publish(name: string, at: number, description?: string): Promise<FunctionVersion> {
    const v = await this.#o.store.publishVersion(name, at, description);
    this.#o.onPublished?.(v);
    return v;
  }

  async getFunction(name: string): Promise<FunctionRecord> {
    const fn = await this.#o.store.getFunction(validateFunctionName(name));
    if (!fn) throw new ThawError('THAW_E_FUNCTION_NOT_FOUND', `function ${name} does not exist`);
    return fn;
  }

  listFunctions() { return this.#o.store.listFunctions(); }

  async listVersions(name: string): Promise<FunctionVersion[]> {
    const fn = await this.getFunction(name);
    return [fn.latest, ...(await this.#o.store.listVersions(name))];
  }

  /** The version a qualifier names; an alias gives its primary version (no routing). */
  async getVersion(name: string, qualifier?: string | null): Promise<{ fn: FunctionRecord; version: FunctionVersion; alias: Alias | null }> {
    const fn = await this.getFunction(name);
    const q = parseQualifier(qualifier);
    if (q.kind === 'latest') return { fn, version: fn.latest, alias: null };
    if (q.kind === 'version') return { fn, version: await this.#version(fn, q.version), alias: null };
    const alias = await this.getAlias(name, q.alias);
    return { fn, version: await this.#version(fn, alias.functionVersion), alias };
  }

  /**
   * The version one invocation runs: aliases with weights pick between their two versions. While a shared
   * store is unreachable (a database restart), the last resolution of that name and qualifier is used, so
   * functions already running keep serving; the store stays the truth whenever it answers.
   */
  async resolve(name: string, qualifier?: string | null): Promise<Resolved> {
    const key = `${name}\0${qualifier ?? ''}`;
    try {
      const r = await this.#resolve(name, qualifier);
      this.#resolved.set(key, r);
      return r;
    } catch (err) {
      const last = this.#resolved.get(key);
      if (last && isThawError(err) && err.code === 'THAW_E_STORE_UNAVAILABLE') return last;
      if (isThawError(err) && err.kind === 'user') this.#resolved.delete(key);
      throw err;
    }
  }

  async #resolve(name: string, qualifier?: string | null): Promise<Resolved> {
    const fn = await this.getFunction(name);
    const q = parseQualifier(qualifier);
    if (q.kind === 'latest') return { fn, version: fn.latest, qualifier: LATEST };
    if (q.kind === 'version') return { fn, version: await this.#version(fn, q.version), qualifier: q.version };
    const alias = await this.getAlias(name, q.alias);
    return { fn, version: await this.#version(fn, pickRoutedVersion(alias, this.#random())), qualifier: q.alias };
  }

  async #version(fn: FunctionRecord, version: string): Promise<FunctionVersion> {
    if (version === LATEST) return fn.latest;
    const v = await this.#o.store.getVersion(fn.name, version);
    if (!v) throw new ThawError('THAW_E_VERSION_NOT_FOUND', `function ${fn.name} has no version ${version}`);
    return v;
  }

  /** Deletes a whole function, or one published version when a version qualifier is given. */
  async deleteFunction(name: string, qualifier?: string | null): Promise<void> {
    const fn = await this.getFunction(name);
    const q = parseQualifier(qualifier);
    if (q.kind === 'alias') throw new ThawError('THAW_E_QUALIFIER_INVALID', 'DeleteFunction takes a version number, not an alias; use DeleteAlias for aliases');
    if (q.kind === 'version') {
      const v = await this.#version(fn, q.version);
      await this.#o.store.deleteVersion(name, q.version);
      await this.#collect(contentOf(v.config), imagesOf(v.config));
      return;
    }
    const all = [fn.latest, ...(await this.#o.store.listVersions(name))];
    const shas = new Set(all.flatMap((v) => contentOf(v.config)));
    await this.#o.store.deleteFunction(name);
    await this.#collect([...shas], all.flatMap((v) => imagesOf(v.config)));
  }

  async putAlias(name: string, aliasName: string, input: AliasInput, create: boolean): Promise<Alias> {
    const fn = await this.getFunction(name);
    validateAliasName(aliasName);
    const existing = await this.#o.store.getAlias(name, aliasName);
    if (!create && !existing) throw new ThawError('THAW_E_ALIAS_NOT_FOUND', `function ${name} has no alias ${aliasName}`);
    if (create && existing) throw new ThawError('THAW_E_ALIAS_EXISTS', `alias ${aliasName} of ${name} already exists`);
    if (existing && input.revisionId && input.revisionId !== existing.revisionId) {
      throw new ThawError('THAW_E_REVISION_MISMATCH', `alias ${aliasName} is at revision ${existing.revisionId}, not ${input.revisionId}`);
    }
    const functionVersion = input.functionVersion ?? existing?.functionVersion;
    if (functionVersion !== LATEST) await this.#version(fn, functionVersion);
    let routing = input.routing === undefined ? existing?.routing ?? null : input.routing;
    if (routing) {
      routing = parseOr('THAW_E_ALIAS_ROUTING_INVALID', routingSchema, routing, 'RoutingConfig.AdditionalVersionWeights');
      if (routing.version === functionVersion) throw new ThawError('THAW_E_ALIAS_ROUTING_INVALID', `the additional version ${routing.version} is the alias's primary version`);
      if (functionVersion === LATEST) throw new ThawError('THAW_E_ALIAS_ROUTING_INVALID', 'weighted routing needs a published primary version, not $LATEST');
      await this.#version(fn, routing.version);
      if (routing.weight === 0) routing = null;
    }
    const alias: Alias = {
      functionName: name, name: aliasName, functionVersion,
      description: input.description ?? existing?.description ?? '', routing, revisionId: randomUUID(),
    };
    await this.#o.store.putAlias(alias, create);
    return alias;
  }

  async getAlias(name: string, aliasName: string): Promise<Alias> {
    const alias = await this.#o.store.getAlias(name, validateAliasName(aliasName));
    if (!alias) throw new ThawError('THAW_E_ALIAS_NOT_FOUND', `function ${name} has no alias ${aliasName}`);
    return alias;
  }

  async listAliases(name: string) { await this.getFunction(name); return this.#o.store.listAliases(name); }

  async deleteAlias(name: string, aliasName: string) {
    await this.getAlias(name, aliasName);
    await this.#o.store.deleteAlias(name, aliasName);
  }

  async putConcurrency(name: string, limit: number | null): Promise<void> {
    await this.getFunction(name);
    if (limit !== null && !(Number.isInteger(limit) && limit >= 0 && limit <= 10_000)) {
      throw new ThawError('THAW_E_CONFIG_INVALID', `ReservedConcurrentExecutions must be an integer from 0 to 10000, got ${limit}`);
    }
    await this.#o.store.setReservedConcurrency(name, limit);
  }

  /** Stores and unpacks a package, checked for its handler; refused (and not kept) when the runtime would refuse the handler. */
  async #ingest(code: Buffer | undefined, handler: string, runtime: string) {
    if (!code || code.length === 0) throw new ThawError('THAW_E_PACKAGE_MISSING', 'no code was given (Code.ZipFile is empty)');
    const pkg = await ingestPackage({ bytes: code, handler, blobs: this.#o.blobs, cache: this.#o.cache, limits: this.#o.limits, minImageBytes: this.#o.minImageBytes });
    try {
      await checkNotCallbackHandler(join(pkg.dir, pkg.handlerFile), parseHandler(handler).exportName, runtime);
    } catch (err) {
      await this.#collect([pkg.sha256], pkg.image ? [{ package: pkg.sha256, image: pkg.image.sha256 }] : []);
      throw err;
    }
    return pkg;
  }

  /** Removes packages no version uses any more, from the origin and the node cache, and their images. */
  #collect(shas: string[], images: PackageImage[] = []) { return collectUnused(this.#o, shas, images); }
}

/** The content a configuration holds: its package and its layers' (deleted layer versions' included). */
const contentOf = (c: FunctionConfig) => [c.codeSha256, ...(c.layers ?? []).map((l) => l.codeSha256)];
/** The image a configuration names, with its package (it goes when the package does). */
const imagesOf = (c: FunctionConfig): PackageImage[] => (c.codeImage ? [{ package: c.codeSha256, image: c.codeImage.sha256 }] : []);
const imageOf = (pkg: Ingested): Pick<FunctionConfig, 'codeImage'> => (pkg.image ? { codeImage: pkg.image } : {});
