// The rest of the Lambda management API a deploy tool calls (tags, account settings, code signing, runtime
// management, recursion, event source mappings, capacity providers, durable executions, InvokeAsync), and
// the field policy of the function operations: every request field is honoured, accepted at the value
// that means "off", or refused naming it; none is dropped silently. Imports src/core, control's
// validation and the gateway's plumbing.
import { statfs } from 'node:fs/promises';
import { ACCOUNT_ID, functionArn, parseFunctionRef } from '../core/arn.ts';
import { ThawError } from '../core/errors.ts';
import { DEFAULT_ROLE, LATEST, type FunctionVersion } from '../core/types.ts';
import { validateFunctionName, type ConfigInput } from '../control/index.ts';
import { checkFields, functionTarget, optObject, optString, readBody, readJson, sendJson, unknownField, type RequestContext, type Router } from './http.ts';
import { MAX_ASYNC_PAYLOAD_BYTES, validatePayload, type Platform } from './platform.ts';

const BODY_BYTES = 64 * 1024;

/** The one architecture this node runs, in Lambda's spelling. */
export const HOST_ARCHITECTURE = process.arch === 'arm64' ? 'arm64' : 'x86_64';

// Request fields of each operation (the AWS SDK's shapes, path and query parameters left out), with the
// members of the nested structures Thaw reads. Thaw's own extensions are named Thaw*.
const CODE = ['ZipFile', 'S3Bucket', 'S3Key', 'S3ObjectVersion', 'S3ObjectStorageMode', 'ImageUri', 'SourceKMSKeyArn'];
const CONFIG = ['Role', 'Handler', 'Description', 'Timeout', 'MemorySize', 'VpcConfig', 'Environment', 'Runtime', 'DeadLetterConfig',
  'KMSKeyArn', 'TracingConfig', 'Layers', 'FileSystemConfigs', 'ImageConfig', 'EphemeralStorage', 'SnapStart', 'LoggingConfig',
  'CapacityProviderConfig', 'DurableConfig', 'ThawInstanceConcurrency', 'ThawEgress'];
const OPERATION_FIELDS: Record<string, readonly string[]> = {
  CreateFunction: ['FunctionName', 'Code', 'Publish', 'PublishTo', 'PackageType', 'Tags', 'CodeSigningConfigArn', 'Architectures', 'TenancyConfig', ...CONFIG],
  UpdateFunctionConfiguration: ['RevisionId', ...CONFIG],
  UpdateFunctionCode: [...CODE, 'Architectures', 'Publish', 'PublishTo', 'DryRun', 'RevisionId', 'ThawHandler'],
  PublishVersion: ['CodeSha256', 'Description', 'RevisionId', 'PublishTo'],
  CreateAlias: ['Name', 'FunctionVersion', 'Description', 'RoutingConfig'],
  UpdateAlias: ['FunctionVersion', 'Description', 'RoutingConfig', 'RevisionId'],
  PutFunctionConcurrency: ['ReservedConcurrentExecutions'],
  PutProvisionedConcurrencyConfig: ['ProvisionedConcurrentExecutions'],
  PutFunctionEventInvokeConfig: ['MaximumRetryAttempts', 'MaximumEventAgeInSeconds', 'DestinationConfig'],
  UpdateFunctionEventInvokeConfig: ['MaximumRetryAttempts', 'MaximumEventAgeInSeconds', 'DestinationConfig'],
  TagResource: ['Tags'],
  PutRuntimeManagementConfig: ['UpdateRuntimeOn', 'RuntimeVersionArn'],
  PutFunctionRecursionConfig: ['RecursiveLoop'],
};
const NESTED_FIELDS: Record<string, readonly string[]> = {
  Code: CODE,
  VpcConfig: ['SubnetIds', 'SecurityGroupIds', 'Ipv6AllowedForDualStack'],
  Environment: ['Variables'],
  DeadLetterConfig: ['TargetArn'],
  TracingConfig: ['Mode'],
  EphemeralStorage: ['Size'],
  SnapStart: ['ApplyOn'],
  LoggingConfig: ['LogFormat', 'ApplicationLogLevel', 'SystemLogLevel', 'LogGroup'],
  ImageConfig: ['EntryPoint', 'Command', 'WorkingDirectory'],
  RoutingConfig: ['AdditionalVersionWeights'],
  DestinationConfig: ['OnSuccess', 'OnFailure'],
};

const refuse = (field: string, why: string) => new ThawError('THAW_E_FIELD_UNSUPPORTED', `${field}: ${why}`, { details: { field } });

/** Empty as deploy tools send a field they leave at its default: absent, null, "", [] or {} of empties. */
const isEmpty = (v: unknown): boolean =>
  v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0) ||
  (typeof v === 'object' && !Array.isArray(v) && Object.values(v as object).every(isEmpty));

/**
 * Checks a request body of `op` field by field before anything is changed: unknown fields and values Thaw
 * cannot honour are refused with the field named; what Thaw honours is left to the operation.
 * `functionName` is the function the call is about (for LoggingConfig's LogGroup).
 */
export function checkRequestFields(op: keyof typeof OPERATION_FIELDS | string, body: Record<string, unknown>, functionName?: string): void {
  const known = OPERATION_FIELDS[op];
  if (!known) return;
  for (const [field, value] of Object.entries(body)) {
    if (!known.includes(field)) throw unknownField(op, field, known);
    const nested = NESTED_FIELDS[field];
    // A structure given as anything else ("x", [..]) would otherwise read as one with no members set.
    if (nested && value !== null && value !== undefined && (typeof value !== 'object' || Array.isArray(value))) {
      throw new ThawError('THAW_E_REQUEST_INVALID', `${field} must be an object (with ${nested.join(', ')}), got ${JSON.stringify(value).slice(0, 100)}`, { details: { field } });
    }
    if (nested && value !== null && typeof value === 'object') {
      checkFields(`${op}'s ${field}`, value as Record<string, unknown>, nested);
    }
    fieldPolicy(field, value, op === 'CreateFunction' ? optString(body, 'FunctionName') : functionName);
  }
  const code = op === 'CreateFunction' ? optObject(body, 'Code') : op === 'UpdateFunctionCode' ? body : undefined;
  if (code) codePolicy(code, op === 'CreateFunction' ? 'Code.' : '');
}

/** Fields Thaw accepts only empty (deploy tools send them so): any value is refused, naming the field as shown and what works instead. */
const EMPTY_ONLY: Record<string, readonly [shown: string, instead: string]> = {
  DeadLetterConfig: ['DeadLetterConfig.TargetArn', 'Thaw has no SQS or SNS to send failed events to; it keeps every asynchronous event that failed for good as a dead letter (GET /thaw/v1/functions/{name}/dead-letters, redrivable), and PutFunctionEventInvokeConfig\'s DestinationConfig.OnFailure sends them to another function'],
  KMSKeyArn: ['KMSKeyArn', 'Thaw has no KMS to encrypt environment variables with a key of yours; leave it out (the variables stay in Thaw\'s store on this node, readable by the platform only)'],
  FileSystemConfigs: ['FileSystemConfigs', 'Thaw mounts no EFS file systems; keep data in a service the function reaches over the network, or in /tmp (EphemeralStorage) for scratch'],
  CodeSigningConfigArn: ['CodeSigningConfigArn', 'Thaw verifies no code signatures; leave it out (GetFunctionCodeSigningConfig reports none)'],
  ImageConfig: ['ImageConfig', 'Thaw runs .zip packages, not container images; put the entry point in Handler'],
  TenancyConfig: ['TenancyConfig', 'Thaw has no per-tenant isolation mode; every instance serves one function version (ThawInstanceConcurrency sets how many invocations at once)'],
  CapacityProviderConfig: ['CapacityProviderConfig', 'Thaw runs functions on its own nodes, not on Lambda Managed Instances capacity providers; leave it out'],
  DurableConfig: ['DurableConfig', 'Thaw does not run durable functions (checkpointed executions); leave it out'],
  PublishTo: ['PublishTo', 'publishing to LATEST_PUBLISHED is for capacity providers, which Thaw does not offer; use Publish: true'],
};

/** Fields with a value Thaw cannot honour: refused, saying what works instead. */
function fieldPolicy(field: string, value: unknown, functionName: string | undefined): void {
  const emptyOnly = EMPTY_ONLY[field];
  if (emptyOnly) {
    if (!isEmpty(value)) throw refuse(...emptyOnly);
    return;
  }
  switch (field) {
    case 'Architectures': {
      const list = Array.isArray(value) ? value : [value];
      if (list.length !== 1 || list[0] !== HOST_ARCHITECTURE) throw refuse('Architectures', `this Thaw node runs ${HOST_ARCHITECTURE} only; give ["${HOST_ARCHITECTURE}"] or leave it out (got ${JSON.stringify(value)})`);
      return;
    }
    case 'VpcConfig':
      if ((value as Record<string, unknown> | null)?.Ipv6AllowedForDualStack === true) throw refuse('VpcConfig.Ipv6AllowedForDualStack', 'Thaw networks are IPv4 only; leave it out or false');
      return;
    case 'LoggingConfig': {
      // LogFormat and the levels are honoured (lambdaSettingsInput; control validates them); the group is the function's.
      const c = (value ?? {}) as Record<string, unknown>;
      const group = `/aws/lambda/${functionName ?? '{FunctionName}'}`;
      if (!isEmpty(c.LogGroup) && c.LogGroup !== group) throw refuse('LoggingConfig.LogGroup', `Thaw keeps a function's logs under its own name; give ${group} or leave it out (got ${JSON.stringify(c.LogGroup)})`);
      return;
    }
  }
}

/** Code comes as ZipFile or S3Bucket/S3Key (read at deploy, src/gateway/code-source.ts); images are refused. */
function codePolicy(code: Record<string, unknown>, prefix: string): void {
  // Thaw always keeps its own copy of an S3 package (in its origin): COPY is what it does, nothing else is offered.
  if (!isEmpty(code.S3ObjectStorageMode) && code.S3ObjectStorageMode !== 'COPY') throw refuse(`${prefix}S3ObjectStorageMode`, 'Thaw copies the package into its own origin at deploy; give COPY or leave it out');
  if (!isEmpty(code.ImageUri)) throw refuse(`${prefix}ImageUri`, 'Thaw runs .zip packages, not container images; upload the code as ZipFile');
  if (!isEmpty(code.SourceKMSKeyArn)) throw refuse(`${prefix}SourceKMSKeyArn`, 'Thaw has no KMS; packages are stored on the node as uploaded; leave it out');
}

/** The Lambda settings Thaw honours beyond the basics, read from a CreateFunction or UpdateFunctionConfiguration body. */
export function lambdaSettingsInput(body: Record<string, unknown>): Pick<ConfigInput, 'role' | 'tracingMode' | 'snapStart' | 'logging'> {
  const tracing = optObject(body, 'TracingConfig');
  const logging = optObject(body, 'LoggingConfig');
  // A LoggingConfig with none of its settings (only LogGroup, or nothing) leaves the format as it is.
  const loggingGiven = logging && ['LogFormat', 'ApplicationLogLevel', 'SystemLogLevel'].some((k) => !isEmpty(logging[k]));
  const snap = optObject(body, 'SnapStart');
  const role = optString(body, 'Role');
  const mode = tracing ? optString(tracing, 'Mode') : undefined;
  const applyOn = snap ? optString(snap, 'ApplyOn') : undefined;
  // Values are checked by control (validateConfig), with the rest of the configuration.
  return {
    ...(role !== undefined ? { role } : {}),
    ...(mode !== undefined ? { tracingMode: mode } : {}),
    ...(applyOn !== undefined ? { snapStart: applyOn } : {}),
    ...(loggingGiven ? { logging: {
      format: optString(logging, 'LogFormat') ?? 'Text',
      ...(isEmpty(logging.ApplicationLogLevel) ? {} : { applicationLogLevel: optString(logging, 'ApplicationLogLevel') }),
      ...(isEmpty(logging.SystemLogLevel) ? {} : { systemLogLevel: optString(logging, 'SystemLogLevel') }),
    } } : {}),
  } as Pick<ConfigInput, 'role' | 'tracingMode' | 'snapStart' | 'logging'>;
}

/**
 * What Lambda's FunctionConfiguration carries beyond the basics, as Thaw runs the version: a deploy tool
 * that compares desired and actual state sees what it sent. `snapshots` is whether the node builds them.
 */
export function lambdaSettingsShape(v: FunctionVersion, snapshots: boolean) {
  const snapOn = snapshots && v.config.snapStart !== 'None';
  return {
    Role: v.config.role ?? DEFAULT_ROLE,
    TracingConfig: { Mode: v.config.tracingMode ?? 'PassThrough' },
    LoggingConfig: loggingShape(v),
    SnapStart: { ApplyOn: v.config.snapStart ?? (snapshots ? 'PublishedVersions' : 'None'), OptimizationStatus: snapOn && v.version !== LATEST ? 'On' : 'Off' },
  };
}

/** LoggingConfig as GetFunctionConfiguration returns it: levels only with JSON, as on Lambda. */
function loggingShape(v: FunctionVersion) {
  const l = v.config.logging ?? { format: 'Text' as const };
  const LogGroup = `/aws/lambda/${v.functionName}`;
  return l.format === 'JSON' ? { LogFormat: 'JSON', ApplicationLogLevel: l.applicationLogLevel, SystemLogLevel: l.systemLogLevel, LogGroup } : { LogFormat: 'Text', LogGroup };
}

export function managementRoutes(router: Router, platform: Platform): void {
  const { control, store } = platform;
  const region = platform.options.region;

  /** A function named by the path (name, name:qualifier or ARN) that must exist. */
  const fnOf = async (ctx: RequestContext) => {
    const t = functionTarget(ctx);
    await control.getFunction(t.name);
    return t;
  };

  const body = async (ctx: RequestContext, op: string) => {
    const b = await readJson(ctx.req, BODY_BYTES);
    checkRequestFields(op, b);
    return b;
  };

  // Tags: on functions only (Thaw has no event source mappings, code signing configs or capacity providers
  // to tag), by the function's unqualified ARN as Lambda takes them.
  const tagged = (ctx: RequestContext) => {
    const arn = ctx.params.arn;
    const m = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):function:([^:]+)(?::(.+))?$/.exec(arn);
    if (!m) throw new ThawError('THAW_E_REQUEST_INVALID', `Resource must be a function ARN such as ${functionArn(region, 'NAME')}, got ${JSON.stringify(arn)}`);
    if (m[1] !== region || m[2] !== ACCOUNT_ID) throw new ThawError('THAW_E_FUNCTION_NOT_FOUND', `${arn} is not a function of this Thaw (region ${region}, account ${ACCOUNT_ID})`);
    if (m[4] !== undefined) throw new ThawError('THAW_E_REQUEST_INVALID', `tags belong to the function, not to a version or alias: use ${functionArn(region, m[3])}`);
    return validateFunctionName(m[3]);
  };

  router.on('GET', '/2017-03-31/tags/{arn}', async (ctx) => {
    sendJson(ctx, 200, { Tags: await control.listTags(tagged(ctx)) });
  });

  router.on('POST', '/2017-03-31/tags/{arn}', async (ctx) => {
    const name = tagged(ctx);
    const b = await body(ctx, 'TagResource');
    const tags = optObject(b, 'Tags');
    if (!tags) throw new ThawError('THAW_E_TAGS_INVALID', 'Tags is required: an object of tag keys to values');
    await control.tagFunction(name, tags);
    sendJson(ctx, 204, undefined);
  });

  router.on('DELETE', '/2017-03-31/tags/{arn}', async (ctx) => {
    const name = tagged(ctx);
    const keys = ctx.url.searchParams.getAll('tagKeys');
    if (keys.length === 0) throw new ThawError('THAW_E_TAGS_INVALID', 'tagKeys is required: the keys of the tags to remove');
    await control.untagFunction(name, keys);
    sendJson(ctx, 204, undefined);
  });

  // Account settings: Thaw's own limits (per node) and what the store holds.
  router.on('GET', '/2016-08-19/account-settings', async (ctx) => {
    const fns = await control.listFunctions();
    let used = 0;
    for (const f of fns) {
      used += f.latest.config.codeSize;
      for (const v of await store.listVersions(f.name)) used += v.config.codeSize;
    }
    // Code is kept in the data dir: what it can hold is what is there plus the space left on its disk.
    const fs = await statfs(platform.options.dataDir);
    const o = platform.options;
    sendJson(ctx, 200, {
      AccountLimit: {
        TotalCodeSize: used + Number(fs.bavail) * Number(fs.bsize),
        CodeSizeZipped: o.maxPackageBytes,
        CodeSizeUnzipped: o.maxUnpackedBytes,
        // Thaw's limit is per function (PutFunctionConcurrency overrides it), not shared by an account.
        ConcurrentExecutions: o.concurrencyLimit,
        UnreservedConcurrentExecutions: o.concurrencyLimit,
      },
      AccountUsage: { TotalCodeSize: used, FunctionCount: fns.length },
    });
  });

  // Code signing: none, and none can be made.
  router.on('GET', '/2020-06-30/functions/{name}/code-signing-config', async (ctx) => {
    const { name } = await fnOf(ctx);
    sendJson(ctx, 200, { CodeSigningConfigArn: '', FunctionName: name });
  });
  router.on('PUT', '/2020-06-30/functions/{name}/code-signing-config', async (ctx) => {
    await fnOf(ctx);
    throw unsupported('PutFunctionCodeSigningConfig', 'Thaw verifies no code signatures (there are no code signing configs to attach)');
  });
  router.on('DELETE', '/2020-06-30/functions/{name}/code-signing-config', async (ctx) => {
    await fnOf(ctx);
    sendJson(ctx, 204, undefined);
  });
  router.on('GET', '/2020-04-22/code-signing-configs', async (ctx) => sendJson(ctx, 200, { CodeSigningConfigs: [] }));
  router.on('POST', '/2020-04-22/code-signing-configs', async () => {
    throw unsupported('CreateCodeSigningConfig', 'Thaw verifies no code signatures');
  });
  const noCsc = async (ctx: RequestContext) => {
    throw new ThawError('THAW_E_CODE_SIGNING_CONFIG_NOT_FOUND', `code signing config ${ctx.params.arn} does not exist: Thaw has none`);
  };
  for (const method of ['GET', 'PUT', 'DELETE']) router.on(method, '/2020-04-22/code-signing-configs/{arn}', noCsc);
  router.on('GET', '/2020-04-22/code-signing-configs/{arn}/functions', noCsc);

  // Runtime management: the runtime is the one installed with Thaw, updated when Thaw is (Lambda's Auto).
  router.on('GET', '/2021-07-20/functions/{name}/runtime-management-config', async (ctx) => {
    const t = await fnOf(ctx);
    sendJson(ctx, 200, { UpdateRuntimeOn: 'Auto', FunctionArn: functionArn(region, t.name, t.qualifier ?? undefined) });
  });
  router.on('PUT', '/2021-07-20/functions/{name}/runtime-management-config', async (ctx) => {
    const t = await fnOf(ctx);
    const b = await body(ctx, 'PutRuntimeManagementConfig');
    const on = optString(b, 'UpdateRuntimeOn');
    if (on !== 'Auto') throw refuse('UpdateRuntimeOn', `Thaw runs the runtime installed with it and updates it with Thaw itself, which is Lambda's Auto; ${on === undefined ? 'it is required' : `${on} cannot be honoured`}: give Auto`);
    if (!isEmpty(b.RuntimeVersionArn)) throw refuse('RuntimeVersionArn', 'runtime versions cannot be pinned on Thaw; leave it out');
    sendJson(ctx, 200, { UpdateRuntimeOn: 'Auto', FunctionArn: functionArn(region, t.name, t.qualifier ?? undefined) });
  });

  // Recursion: Thaw always stops loops (context.invoke depth, destination chains of 16 hops): Terminate.
  router.on('GET', '/2024-08-31/functions/{name}/recursion-config', async (ctx) => {
    await fnOf(ctx);
    sendJson(ctx, 200, { RecursiveLoop: 'Terminate' });
  });
  router.on('PUT', '/2024-08-31/functions/{name}/recursion-config', async (ctx) => {
    await fnOf(ctx);
    const loop = optString(await body(ctx, 'PutFunctionRecursionConfig'), 'RecursiveLoop');
    if (loop !== 'Terminate') throw refuse('RecursiveLoop', `Thaw always stops recursive loops (context.invoke depth, destination chains after 16 hops); give Terminate${loop === undefined ? '' : `, not ${loop}`}`);
    sendJson(ctx, 200, { RecursiveLoop: 'Terminate' });
  });

  // Event source mappings: Thaw has no event sources (SQS, Kinesis, DynamoDB, Kafka, MQ) to poll.
  router.on('GET', '/2015-03-31/event-source-mappings', async (ctx) => {
    const fn = ctx.url.searchParams.get('FunctionName');
    if (fn) await control.getFunction(parseFunctionRef(fn).name);
    sendJson(ctx, 200, { EventSourceMappings: [] });
  });
  router.on('POST', '/2015-03-31/event-source-mappings', async () => {
    throw unsupported('CreateEventSourceMapping', 'Thaw has no event sources to poll (SQS, Kinesis, DynamoDB streams, Kafka, MQ); send events with Invoke (InvocationType Event), an HTTP trigger, or a schedule (/thaw/v1/functions/{name}/schedules)');
  });
  const noMapping = async (ctx: RequestContext) => {
    throw new ThawError('THAW_E_RESOURCE_NOT_FOUND', `event source mapping ${ctx.params.uuid} does not exist: Thaw has no event source mappings`);
  };
  for (const method of ['GET', 'PUT', 'DELETE']) router.on(method, '/2015-03-31/event-source-mappings/{uuid}', noMapping);

  // Capacity providers (Lambda Managed Instances): Thaw runs functions on its own nodes.
  const capacity = 'Thaw runs functions on its own nodes, not on Lambda Managed Instances capacity providers';
  router.on('GET', '/2025-11-30/capacity-providers', async (ctx) => sendJson(ctx, 200, { CapacityProviders: [] }));
  router.on('POST', '/2025-11-30/capacity-providers', async () => { throw unsupported('CreateCapacityProvider', capacity); });
  const noProvider = async (ctx: RequestContext) => {
    throw new ThawError('THAW_E_RESOURCE_NOT_FOUND', `capacity provider ${ctx.params.provider} does not exist: ${capacity}`);
  };
  for (const method of ['GET', 'PUT', 'DELETE']) router.on(method, '/2025-11-30/capacity-providers/{provider}', noProvider);
  router.on('GET', '/2025-11-30/capacity-providers/{provider}/function-versions', noProvider);
  for (const method of ['GET', 'PUT']) {
    router.on(method, '/2025-11-30/functions/{name}/function-scaling-config', async (ctx) => {
      await fnOf(ctx);
      throw unsupported(`${method === 'GET' ? 'Get' : 'Put'}FunctionScalingConfig`, `${capacity}; scale a function with PutFunctionConcurrency and PutProvisionedConcurrencyConfig`);
    });
  }

  // Durable executions: Thaw does not run durable functions (DurableConfig is refused), so there are none.
  router.on('GET', '/2025-12-01/functions/{name}/durable-executions', async (ctx) => {
    await fnOf(ctx);
    sendJson(ctx, 200, { DurableExecutions: [] });
  });
  const noExecution = async (ctx: RequestContext) => {
    throw new ThawError('THAW_E_RESOURCE_NOT_FOUND', `durable execution ${ctx.params.id} does not exist: Thaw does not run durable functions`);
  };
  router.on('GET', '/2025-12-01/durable-executions/{id}', noExecution);
  for (const sub of ['history', 'state']) router.on('GET', `/2025-12-01/durable-executions/{id}/${sub}`, noExecution);
  for (const sub of ['checkpoint', 'stop']) router.on('POST', `/2025-12-01/durable-executions/{id}/${sub}`, noExecution);
  for (const sub of ['fail', 'heartbeat', 'succeed']) router.on('POST', `/2025-12-01/durable-execution-callbacks/{id}/${sub}`, noExecution);

  // Whole-document resource policies: Thaw keeps a function's policy as statements (AddPermission).
  for (const [method, op] of [['GET', 'GetResourcePolicy'], ['PUT', 'PutResourcePolicy'], ['DELETE', 'DeleteResourcePolicy']] as const) {
    router.on(method, '/2026-07-09/resource-policy/{arn}', async () => {
      throw unsupported(op, 'a function\'s resource-based policy is kept statement by statement: use AddPermission, GetPolicy and RemovePermission');
    });
  }

  // InvokeAsync (deprecated by Lambda, still in the SDK): an Event invocation of $LATEST.
  router.on('POST', '/2014-11-13/functions/{name}/invoke-async', async (ctx) => {
    const { name } = parseFunctionRef(ctx.params.name);
    await control.getFunction(name);
    const payload = validatePayload((await readBody(ctx.req, MAX_ASYNC_PAYLOAD_BYTES)).toString('utf8'), MAX_ASYNC_PAYLOAD_BYTES);
    const id = await platform.events.enqueue(name, LATEST, payload);
    sendJson(ctx, 202, { Status: 202 }, { 'x-amzn-requestid': id, 'x-thaw-invocation-id': id });
  });
}

const unsupported = (op: string, why: string) => new ThawError('THAW_E_OPERATION_UNSUPPORTED', `${op} is not offered by Thaw: ${why}`, { details: { operation: op } });
