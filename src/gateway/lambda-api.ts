// The AWS Lambda REST API (2015-03-31 and friends) over Thaw: request fields in, Lambda's JSON shapes out,
// so the AWS SDK and CLI work unchanged. SigV4 signatures are accepted, not verified (yet).
// Imports the gateway's platform and http helpers, control, core.
import { functionArn } from '../core/arn.ts';
import { ThawError } from '../core/errors.ts';
import { DEFAULT_EGRESS } from '../network/index.ts';
import { LATEST, ephemeralStorageMb, type Alias, type FunctionVersion } from '../core/types.ts';
import type { ConfigInput } from '../control/index.ts';
import { serverTiming } from '../telemetry/index.ts';
import { functionTarget, listPage, optBoolean, optNumber, optObject, optString, readBody, readJson, sendJson, type RequestContext, type Router } from './http.ts';
// Still exported here for the modules that import it from this one; it lives in http.ts.
import { MAX_ASYNC_PAYLOAD_BYTES, MAX_SYNC_PAYLOAD_BYTES, validatePayload, type Platform } from './platform.ts';
import { checkRequestFields, HOST_ARCHITECTURE, lambdaSettingsInput, lambdaSettingsShape } from './lambda-management-api.ts';
import { packageBytes } from './code-source.ts';

const LOG_TAIL_BYTES = 4096;
const CONFIG_BODY_BYTES = 1024 * 1024;

export function lambdaRoutes(router: Router, platform: Platform, baseUrl: () => string): void {
  const { control } = platform;
  const region = platform.options.region;
  const codeBodyBytes = Math.ceil(platform.options.maxPackageBytes * 4 / 3) + CONFIG_BODY_BYTES;

  const configuration = (v: FunctionVersion) => ({
    FunctionName: v.functionName,
    FunctionArn: functionArn(region, v.functionName, v.version === LATEST ? undefined : v.version),
    Runtime: v.config.runtime,
    Handler: v.config.handler,
    CodeSize: v.config.codeSize,
    Description: v.config.description,
    Timeout: Math.round(v.config.timeoutMs / 1000),
    MemorySize: v.config.memoryMb,
    LastModified: new Date(v.createdAt).toISOString().replace('Z', '+0000'),
    CodeSha256: Buffer.from(v.config.codeSha256, 'hex').toString('base64'),
    Version: v.version,
    Environment: { Variables: { ...v.config.env } },
    RevisionId: v.revisionId,
    State: 'Active',
    LastUpdateStatus: 'Successful',
    PackageType: 'Zip',
    Architectures: [HOST_ARCHITECTURE],
    EphemeralStorage: { Size: ephemeralStorageMb(v.config) },
    ThawInstanceConcurrency: v.config.instanceConcurrency,
    VpcConfig: { SubnetIds: [...(v.config.vpc?.networks ?? [])], SecurityGroupIds: [...(v.config.vpc?.securityGroups ?? [])], VpcId: v.config.vpc?.networks.length ? 'thaw' : '', ...(v.config.vpc?.networks.length ? { Ipv6AllowedForDualStack: false } : {}) },
    ...lambdaSettingsShape(v, platform.options.snapshots),
    ThawEgress: { Mode: (v.config.egress ?? DEFAULT_EGRESS).mode, Allow: [...(v.config.egress?.allow ?? [])] },
    ...(v.config.layers?.length ? { Layers: v.config.layers.map((l) => ({ Arn: l.arn, CodeSize: l.codeSize })) } : {}),
  });

  const aliasShape = (a: Alias) => ({
    AliasArn: functionArn(region, a.functionName, a.name),
    Name: a.name,
    FunctionVersion: a.functionVersion,
    Description: a.description,
    RevisionId: a.revisionId,
    ...(a.routing ? { RoutingConfig: { AdditionalVersionWeights: { [a.routing.version]: a.routing.weight } } } : {}),
  });

  const target = functionTarget;

  const configInput = (body: Record<string, unknown>): ConfigInput => {
    const env = optObject(body, 'Environment');
    const vars = env ? optObject(env, 'Variables') : undefined;
    if (vars) for (const [k, v] of Object.entries(vars)) if (typeof v !== 'string') throw new ThawError('THAW_E_CONFIG_INVALID', `Environment.Variables.${k} must be a string`);
    const timeout = optNumber(body, 'Timeout');
    const storage = optObject(body, 'EphemeralStorage');
    const input: ConfigInput = {
      runtime: optString(body, 'Runtime'),
      handler: optString(body, 'Handler'),
      memoryMb: optNumber(body, 'MemorySize'),
      ephemeralStorageMb: storage ? optNumber(storage, 'Size') : undefined,
      timeoutMs: timeout === undefined ? undefined : timeout * 1000,
      env: vars as Record<string, string> | undefined,
      description: optString(body, 'Description'),
      instanceConcurrency: optNumber(body, 'ThawInstanceConcurrency'),
      egress: egressInput(body),
      vpc: vpcInput(body),
      // Layer version ARNs, in order; control resolves them (and refuses unknown ones, naming them).
      layers: body.Layers ?? undefined,
      ...lambdaSettingsInput(body),
    };
    return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as ConfigInput;
  };

  /** ThawEgress: { Mode: none|public|allow, Allow: [rules] } (a Thaw extension). */
  const egressInput = (body: Record<string, unknown>) => {
    const e = optObject(body, 'ThawEgress');
    if (!e) return undefined;
    return { mode: optString(e, 'Mode'), ...(e.Allow !== undefined ? { allow: e.Allow } : {}) };
  };

  /** Lambda's VpcConfig: SubnetIds name Thaw networks, SecurityGroupIds Thaw security groups; empty lists leave them. */
  const vpcInput = (body: Record<string, unknown>) => {
    const v = optObject(body, 'VpcConfig');
    if (!v) return undefined;
    return { networks: v.SubnetIds ?? [], securityGroups: v.SecurityGroupIds ?? [] };
  };

  /** Code.ZipFile, or the object Code.S3Bucket/S3Key name (checked against the package limit before it is read). */
  const codeOf = (container: Record<string, unknown>, field: string) => packageBytes(container, field, platform.limits.maxPackageBytes, platform.options.codeS3TimeoutMs);

  router.on('POST', '/2015-03-31/functions', async (ctx) => {
    const body = await readJson(ctx.req, codeBodyBytes);
    checkRequestFields('CreateFunction', body);
    const code = optObject(body, 'Code');
    if (!code) throw new ThawError('THAW_E_PACKAGE_MISSING', 'Code is required: give Code.ZipFile with the base64 of a .zip or .tgz package, or Code.S3Bucket and Code.S3Key');
    if (body.PackageType !== undefined && body.PackageType !== 'Zip') throw new ThawError('THAW_E_REQUEST_INVALID', 'PackageType must be Zip');
    const name = optString(body, 'FunctionName');
    if (!name) throw new ThawError('THAW_E_NAME_INVALID', 'FunctionName is required');
    const { latest, published } = await control.createFunction({ name, code: await codeOf(code, 'Code.'), publish: optBoolean(body, 'Publish'), tags: optObject(body, 'Tags'), ...configInput(body) });
    sendJson(ctx, 201, configuration(published ?? latest));
  });

  router.on('GET', '/2015-03-31/functions', async (ctx) => {
    const all = ctx.url.searchParams.get('FunctionVersion') === 'ALL';
    const fns = await control.listFunctions();
    const items = all ? (await Promise.all(fns.map((f) => control.listVersions(f.name)))).flat() : fns.map((f) => f.latest);
    // Lambda takes up to 10,000 a page here (`thaw list` asks for that many).
    const page = listPage(ctx, items, 10_000);
    sendJson(ctx, 200, { Functions: page.items.map((v) => configuration(v)), ...page.next });
  });

  router.on('GET', '/2015-03-31/functions/{name}', async (ctx) => {
    const t = target(ctx);
    const { fn, version } = await control.getVersion(t.name, t.qualifier);
    sendJson(ctx, 200, {
      Configuration: configuration(version),
      Code: { RepositoryType: 'Thaw', Location: `${baseUrl()}/thaw/v1/code/${version.config.codeSha256}` },
      ...(fn.reservedConcurrency !== null ? { Concurrency: { ReservedConcurrentExecutions: fn.reservedConcurrency } } : {}),
      Tags: await control.listTags(fn.name),
    });
  });

  router.on('GET', '/2015-03-31/functions/{name}/configuration', async (ctx) => {
    const t = target(ctx);
    const { version } = await control.getVersion(t.name, t.qualifier);
    sendJson(ctx, 200, configuration(version));
  });

  router.on('DELETE', '/2015-03-31/functions/{name}', async (ctx) => {
    const t = target(ctx);
    // As on Lambda: $LATEST is the function itself; delete the function by its name alone.
    if (t.qualifier === LATEST) throw new ThawError('THAW_E_QUALIFIER_INVALID', '$LATEST cannot be deleted on its own; delete the function without a qualifier, or a published version by its number');
    await platform.deleteFunction(t.name, t.qualifier);
    sendJson(ctx, 204, undefined);
  });

  router.on('PUT', '/2015-03-31/functions/{name}/code', async (ctx) => {
    const body = await readJson(ctx.req, codeBodyBytes);
    const { name } = target(ctx);
    checkRequestFields('UpdateFunctionCode', body, name);
    if (optBoolean(body, 'DryRun')) {
      // Lambda's DryRun checks the request and the caller's access without changing the code.
      const fn = await control.getFunction(name);
      if (body.RevisionId !== undefined && optString(body, 'RevisionId') !== fn.latest.revisionId) throw new ThawError('THAW_E_REVISION_MISMATCH', `$LATEST of ${name} is at revision ${fn.latest.revisionId}, not ${optString(body, 'RevisionId')}`);
      sendJson(ctx, 200, configuration(fn.latest));
      return;
    }
    const { latest, published } = await control.updateCode(name, await codeOf(body, ''), {
      publish: optBoolean(body, 'Publish'), revisionId: optString(body, 'RevisionId'), handler: optString(body, 'ThawHandler'),
    });
    await platform.retireStaleLatest(name, latest.revisionId);
    sendJson(ctx, 200, configuration(published ?? latest));
  });

  router.on('PUT', '/2015-03-31/functions/{name}/configuration', async (ctx) => {
    const body = await readJson(ctx.req, CONFIG_BODY_BYTES);
    const { name } = target(ctx);
    checkRequestFields('UpdateFunctionConfiguration', body, name);
    const latest = await control.updateConfiguration(name, { ...configInput(body), revisionId: optString(body, 'RevisionId') });
    await platform.retireStaleLatest(name, latest.revisionId);
    sendJson(ctx, 200, configuration(latest));
  });

  router.on('POST', '/2015-03-31/functions/{name}/versions', async (ctx) => {
    const body = await readJson(ctx.req, CONFIG_BODY_BYTES);
    checkRequestFields('PublishVersion', body);
    const sha = optString(body, 'CodeSha256');
    const v = await control.publishVersion(target(ctx).name, {
      revisionId: optString(body, 'RevisionId'), description: optString(body, 'Description'),
      codeSha256: sha === undefined ? undefined : Buffer.from(sha, 'base64').toString('hex'),
    });
    sendJson(ctx, 201, configuration(v));
  });

  router.on('GET', '/2015-03-31/functions/{name}/versions', async (ctx) => {
    const versions = await control.listVersions(target(ctx).name);
    sendJson(ctx, 200, { Versions: versions.map((v) => configuration(v)) });
  });

  const routing = (body: Record<string, unknown>) => {
    const rc = optObject(body, 'RoutingConfig');
    if (rc === undefined) return undefined;
    const weights = optObject(rc, 'AdditionalVersionWeights') ?? {};
    const entries = Object.entries(weights);
    if (entries.length === 0) return null;
    if (entries.length > 1) throw new ThawError('THAW_E_ALIAS_ROUTING_INVALID', `AdditionalVersionWeights routes to ${entries.length} versions; an alias can route to one additional version`);
    const [version, weight] = entries[0];
    return { version, weight: weight as number };
  };

  router.on('POST', '/2015-03-31/functions/{name}/aliases', async (ctx) => {
    const body = await readJson(ctx.req, CONFIG_BODY_BYTES);
    checkRequestFields('CreateAlias', body);
    const aliasName = optString(body, 'Name');
    const functionVersion = optString(body, 'FunctionVersion');
    if (!aliasName || !functionVersion) throw new ThawError('THAW_E_REQUEST_INVALID', 'Name and FunctionVersion are required');
    const a = await control.putAlias(target(ctx).name, aliasName, { functionVersion, description: optString(body, 'Description'), routing: routing(body) }, true);
    await platform.applyProvisioned(a.functionName);
    await platform.rollout(a);
    sendJson(ctx, 201, aliasShape(a));
  });

  router.on('GET', '/2015-03-31/functions/{name}/aliases', async (ctx) => {
    sendJson(ctx, 200, { Aliases: (await control.listAliases(target(ctx).name)).map(aliasShape) });
  });

  router.on('GET', '/2015-03-31/functions/{name}/aliases/{alias}', async (ctx) => {
    sendJson(ctx, 200, aliasShape(await control.getAlias(target(ctx).name, ctx.params.alias)));
  });

  router.on('PUT', '/2015-03-31/functions/{name}/aliases/{alias}', async (ctx) => {
    const body = await readJson(ctx.req, CONFIG_BODY_BYTES);
    checkRequestFields('UpdateAlias', body);
    const existing = await control.getAlias(target(ctx).name, ctx.params.alias);
    const a = await control.putAlias(target(ctx).name, ctx.params.alias, {
      functionVersion: optString(body, 'FunctionVersion') ?? existing.functionVersion,
      description: optString(body, 'Description'),
      routing: routing(body),
      revisionId: optString(body, 'RevisionId'),
    }, false);
    await platform.applyProvisioned(a.functionName);
    await platform.rollout(a);
    sendJson(ctx, 200, aliasShape(a));
  });

  router.on('DELETE', '/2015-03-31/functions/{name}/aliases/{alias}', async (ctx) => {
    await control.deleteAlias(target(ctx).name, ctx.params.alias);
    sendJson(ctx, 204, undefined);
  });

  router.on('PUT', '/2017-10-31/functions/{name}/concurrency', async (ctx) => {
    const body = await readJson(ctx.req, CONFIG_BODY_BYTES);
    checkRequestFields('PutFunctionConcurrency', body);
    const n = optNumber(body, 'ReservedConcurrentExecutions');
    if (n === undefined) throw new ThawError('THAW_E_REQUEST_INVALID', 'ReservedConcurrentExecutions is required');
    await control.putConcurrency(target(ctx).name, n);
    sendJson(ctx, 200, { ReservedConcurrentExecutions: n });
  });

  router.on('DELETE', '/2017-10-31/functions/{name}/concurrency', async (ctx) => {
    await control.putConcurrency(target(ctx).name, null);
    sendJson(ctx, 204, undefined);
  });

  // Reserved instances: Lambda's provisioned concurrency, per version or alias.
  const provisionedShape = (name: string, qualifier: string, count: number, updatedAt: number) => {
    const s = platform.executor.reservedStatus(name, qualifier);
    const available = s?.available ?? 0;
    return {
      FunctionArn: functionArn(region, name, qualifier),
      RequestedProvisionedConcurrentExecutions: count,
      AvailableProvisionedConcurrentExecutions: available,
      AllocatedProvisionedConcurrentExecutions: s?.allocated ?? 0,
      Status: s?.failure && available < count ? 'FAILED' : available >= count ? 'READY' : 'IN_PROGRESS',
      ...(s?.failure ? { StatusReason: s.failure } : {}),
      LastModified: new Date(updatedAt).toISOString().replace('Z', '+0000'),
    };
  };

  router.on('PUT', '/2019-09-30/functions/{name}/provisioned-concurrency', async (ctx) => {
    const body = await readJson(ctx.req, CONFIG_BODY_BYTES);
    checkRequestFields('PutProvisionedConcurrencyConfig', body);
    const t = target(ctx);
    const n = optNumber(body, 'ProvisionedConcurrentExecutions');
    if (n === undefined) throw new ThawError('THAW_E_REQUEST_INVALID', 'ProvisionedConcurrentExecutions is required');
    await platform.putProvisioned(t.name, t.qualifier, n);
    sendJson(ctx, 202, provisionedShape(t.name, t.qualifier!, n, platform.clock.now()));
  });

  router.on('GET', '/2019-09-30/functions/{name}/provisioned-concurrency', async (ctx) => {
    const t = target(ctx);
    await control.getFunction(t.name);
    const all = await platform.store.listProvisioned(t.name);
    if (ctx.url.searchParams.get('List') === 'ALL') {
      sendJson(ctx, 200, { ProvisionedConcurrencyConfigs: all.map((c) => provisionedShape(c.functionName, c.qualifier, c.count, c.updatedAt)) });
      return;
    }
    const cfg = all.find((c) => c.qualifier === t.qualifier);
    if (!cfg) throw new ThawError('THAW_E_PROVISIONED_NOT_FOUND', `${t.name}:${t.qualifier ?? '$LATEST'} has no reserved instances; set them with PutProvisionedConcurrencyConfig`);
    sendJson(ctx, 200, provisionedShape(cfg.functionName, cfg.qualifier, cfg.count, cfg.updatedAt));
  });

  router.on('DELETE', '/2019-09-30/functions/{name}/provisioned-concurrency', async (ctx) => {
    const t = target(ctx);
    await platform.putProvisioned(t.name, t.qualifier, null);
    sendJson(ctx, 204, undefined);
  });

  router.on('GET', '/2019-09-30/functions/{name}/concurrency', async (ctx) => {
    const fn = await control.getFunction(target(ctx).name);
    sendJson(ctx, 200, fn.reservedConcurrency === null ? {} : { ReservedConcurrentExecutions: fn.reservedConcurrency });
  });

  router.on('POST', '/2015-03-31/functions/{name}/invocations', async (ctx) => {
    const h = ctx.req.headers;
    const type = headerOneOf(h['x-amz-invocation-type'], 'X-Amz-Invocation-Type', ['RequestResponse', 'Event', 'DryRun'], 'RequestResponse');
    const logType = headerOneOf(h['x-amz-log-type'], 'X-Amz-Log-Type', ['None', 'Tail'], 'None');
    const clientContext = clientContextHeader(h['x-amz-client-context']);
    const t = target(ctx);
    const limit = type === 'Event' ? MAX_ASYNC_PAYLOAD_BYTES : MAX_SYNC_PAYLOAD_BYTES;
    const payload = validatePayload((await readBody(ctx.req, limit)).toString('utf8'), limit);

    if (type === 'DryRun') {
      await control.resolve(t.name, t.qualifier);
      sendJson(ctx, 204, undefined);
      return;
    }
    if (type === 'Event') {
      const { version } = await control.getVersion(t.name, t.qualifier);
      const id = await platform.events.enqueue(t.name, t.qualifier ?? LATEST, payload);
      // The id the client gets back is the one the function sees as awsRequestId, as on Lambda.
      sendJson(ctx, 202, undefined, { 'x-amzn-requestid': id, 'x-thaw-invocation-id': id, 'x-amz-executed-version': version.version });
      return;
    }
    const r = await platform.invoke(t.name, t.qualifier, payload, {
      trigger: 'api', signal: ctx.signal, receivedMono: ctx.receivedMono, receivedAt: ctx.receivedAt, clientContext,
      traceId: typeof h['x-amzn-trace-id'] === 'string' ? h['x-amzn-trace-id'] : null,
      traceparent: typeof h.traceparent === 'string' ? h.traceparent : null,
    });
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(r.payload)),
      'x-amzn-requestid': r.record.id,
      'x-amz-executed-version': r.record.version,
      'x-thaw-invocation-id': r.record.id,
      'x-thaw-start': r.record.start ?? 'none',
      'server-timing': serverTiming(r.record),
    };
    if (r.functionError) headers['x-amz-function-error'] = r.functionError;
    if (logType === 'Tail') headers['x-amz-log-result'] = logTail(r.logs);
    ctx.res.writeHead(200, headers);
    ctx.res.end(r.payload);
  });
}

/** X-Amz-Client-Context: base64-encoded JSON, passed to the function as context.clientContext. */
export function clientContextHeader(value: string | string[] | undefined): string | null {
  if (typeof value !== 'string') return null;
  try { JSON.parse(Buffer.from(value, 'base64').toString('utf8')); } catch {
    throw new ThawError('THAW_E_HEADER_INVALID', 'X-Amz-Client-Context must be base64-encoded JSON');
  }
  return value;
}

export function headerOneOf<T extends string>(value: string | string[] | undefined, name: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw new ThawError('THAW_E_HEADER_INVALID', `${name} must be one of ${allowed.join(', ')}; got ${JSON.stringify(value)}`);
  }
  return value as T;
}

/** The last 4 KB of an invocation's log, base64, as Lambda's LogType=Tail returns it. */
export function logTail(lines: readonly string[]): string {
  const text = Buffer.from(lines.join('\n') + '\n');
  return text.subarray(Math.max(0, text.length - LOG_TAIL_BYTES)).toString('base64');
}
