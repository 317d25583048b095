// Validation of every user input that control accepts: names, qualifiers, configuration. Turns zod's
// findings into THAW_E_* errors whose messages name the field and the rule. Imports src/core and zod.
import { z } from 'zod';
import { ThawError, type ErrorCode } from '../core/errors.ts';
import { APPLICATION_LOG_LEVELS, LATEST, RUNTIMES, SYSTEM_LOG_LEVELS, type EgressPolicy, type LoggingSettings, type Runtime, type VpcConfig } from '../core/types.ts';
import { validateEgress } from '../network/index.ts';

/** First path segments the gateway uses itself; a function of that name could never be reached by URL. */
export const RESERVED_NAMES = new Set(['thaw', 'metrics', 'health', 'favicon.ico', 'lambda-url', 'dashboard']);

const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
const ALIAS = /^(?!\d+$)[A-Za-z0-9_-]{1,128}$/;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const RESERVED_ENV = /^(AWS_|LAMBDA_|THAW_|_HANDLER$|_X_AMZN|NODE_OPTIONS$|TZ$)/;
const MAX_ENV_BYTES = 4096;
/** Lambda's pattern for an execution role. */
const ROLE_ARN = /^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role\/?[a-zA-Z_0-9+=,.@\-_/]+$/;

export function validateFunctionName(name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new ThawError('THAW_E_NAME_INVALID', `function name ${JSON.stringify(name)} is not valid: use 1-64 letters, digits, hyphens or underscores, starting with a letter`);
  }
  if (RESERVED_NAMES.has(name.toLowerCase())) throw new ThawError('THAW_E_NAME_RESERVED', `function name "${name}" is reserved`);
  return name;
}

export function validateAliasName(name: unknown): string {
  if (typeof name !== 'string' || !ALIAS.test(name) || name === LATEST) {
    throw new ThawError('THAW_E_NAME_INVALID', `alias name ${JSON.stringify(name)} is not valid: use 1-128 letters, digits, hyphens or underscores, not only digits`);
  }
  return name;
}

export type Qualifier = { kind: 'latest' } | { kind: 'version'; version: string } | { kind: 'alias'; alias: string };

export function parseQualifier(q: string | null | undefined): Qualifier {
  if (q === null || q === undefined || q === '' || q === LATEST) return { kind: 'latest' };
  if (/^[1-9]\d{0,9}$/.test(q)) return { kind: 'version', version: q };
  if (ALIAS.test(q)) return { kind: 'alias', alias: q };
  throw new ThawError('THAW_E_QUALIFIER_INVALID', `qualifier ${JSON.stringify(q)} is neither $LATEST, a version number nor an alias name`);
}

/** A runtime name as given (echoed back exactly, as Lambda does), or the refusal listing the supported ones. */
export function normalizeRuntime(r: unknown): Runtime {
  if (!RUNTIMES.includes(r as Runtime)) {
    throw new ThawError('THAW_E_RUNTIME_UNKNOWN', `Runtime ${JSON.stringify(r)} is not supported; supported: ${RUNTIMES.filter((n) => n.endsWith('.x')).join(', ')} (and nodejs24, Thaw's first spelling of nodejs24.x)`);
  }
  return r as Runtime;
}

const handlerSchema = z.string().regex(/^[^/\s.][^\s]*\.[A-Za-z_$][\w$]*$/, 'must be FILE.EXPORT, e.g. index.handler').max(128)
  .refine((h) => !h.split('/').includes('..'), 'must stay inside the package');

/** Settings a user may give (all optional: a create fills defaults, an update changes what is given). */
export const configInputSchema = z.strictObject({
  handler: handlerSchema,
  memoryMb: z.number().int().min(128).max(10240),
  ephemeralStorageMb: z.number().int().min(512, 'EphemeralStorage.Size must be at least 512 MB').max(10240, 'EphemeralStorage.Size must be at most 10240 MB'),
  timeoutMs: z.number().int().min(1000).max(900_000),
  env: z.record(z.string(), z.string()),
  description: z.string().max(256),
  instanceConcurrency: z.number().int().min(1).max(1000),
  role: z.string().regex(ROLE_ARN, 'Role must be an IAM role ARN, e.g. arn:aws:iam::123456789012:role/my-role'),
  tracingMode: z.enum(['Active', 'PassThrough'], 'TracingConfig.Mode must be Active or PassThrough'),
  snapStart: z.enum(['PublishedVersions', 'None'], 'SnapStart.ApplyOn must be PublishedVersions or None'),
  logging: z.strictObject({
    format: z.enum(['Text', 'JSON'], 'LoggingConfig.LogFormat must be Text or JSON'),
    applicationLogLevel: z.enum(APPLICATION_LOG_LEVELS, `LoggingConfig.ApplicationLogLevel must be one of ${APPLICATION_LOG_LEVELS.join(', ')}`).optional(),
    systemLogLevel: z.enum(SYSTEM_LOG_LEVELS, `LoggingConfig.SystemLogLevel must be one of ${SYSTEM_LOG_LEVELS.join(', ')}`).optional(),
  }).refine((l) => l.format === 'JSON' || (l.applicationLogLevel === undefined && l.systemLogLevel === undefined), 'LoggingConfig.ApplicationLogLevel and LoggingConfig.SystemLogLevel apply only to LogFormat JSON, as on Lambda: give LogFormat JSON with them, or leave them out')
    // Stored whole: Text has no levels, JSON both (INFO unless given), as GetFunctionConfiguration shows them.
    .transform((l): LoggingSettings => l.format === 'Text' ? { format: 'Text' } : { format: 'JSON', applicationLogLevel: l.applicationLogLevel ?? 'INFO', systemLogLevel: l.systemLogLevel ?? 'INFO' }),
}).partial();

/** `layers`: layer version ARNs, resolved against the store by control (src/control/layers.ts), not here. */
export type ConfigInput = z.infer<typeof configInputSchema> & { runtime?: string; egress?: unknown; vpc?: unknown; layers?: unknown };

export const NETWORK_NAME = /^[a-z][a-z0-9-]{0,31}$/;

/** A VpcConfig as given: network names (each checked against the store by control). */
export function validateVpc(v: unknown): VpcConfig {
  const o = v as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || !Array.isArray(o.networks)) throw new ThawError('THAW_E_VPC_INVALID', 'VpcConfig needs SubnetIds: a list of Thaw network names');
  if (o.networks.length > 16) throw new ThawError('THAW_E_VPC_INVALID', 'VpcConfig.SubnetIds names at most 16 networks');
  for (const n of o.networks) if (typeof n !== 'string' || !NETWORK_NAME.test(n)) throw new ThawError('THAW_E_VPC_INVALID', `VpcConfig.SubnetIds: ${JSON.stringify(n)} is not a Thaw network name (1-32 lowercase letters, digits and hyphens)`);
  const groups = o.securityGroups ?? [];
  if (!Array.isArray(groups) || groups.length > 5) throw new ThawError('THAW_E_VPC_INVALID', 'VpcConfig.SecurityGroupIds is a list of at most 5 security group names');
  for (const g of groups) if (typeof g !== 'string' || !NETWORK_NAME.test(g)) throw new ThawError('THAW_E_VPC_INVALID', `VpcConfig.SecurityGroupIds: ${JSON.stringify(g)} is not a Thaw security group name`);
  if (groups.length && !o.networks.length) throw new ThawError('THAW_E_VPC_INVALID', 'VpcConfig.SecurityGroupIds without SubnetIds: security groups apply on a network');
  const sorted = [...new Set(groups as string[])].sort();
  return { networks: [...new Set(o.networks as string[])], ...(sorted.length ? { securityGroups: sorted } : {}) };
}

export const defaultConfig = { handler: 'index.handler', memoryMb: 128, ephemeralStorageMb: 512, timeoutMs: 3000, env: {}, description: '', instanceConcurrency: 1 } as const;

export function validateConfig(input: ConfigInput): z.infer<typeof configInputSchema> & { runtime?: Runtime; egress?: EgressPolicy; vpc?: VpcConfig } {
  const { runtime, egress, vpc, ...rest } = input;
  const parsed = parseOr('THAW_E_CONFIG_INVALID', configInputSchema, rest);
  if (parsed.handler !== undefined) parseOr('THAW_E_HANDLER_INVALID', handlerSchema, parsed.handler, 'handler');
  if (parsed.env) validateEnv(parsed.env);
  return {
    ...parsed,
    ...(runtime !== undefined ? { runtime: normalizeRuntime(runtime) } : {}),
    ...(egress !== undefined ? { egress: validateEgress(egress) } : {}),
    ...(vpc !== undefined ? { vpc: validateVpc(vpc) } : {}),
  };
}

function validateEnv(env: Record<string, string>) {
  for (const key of Object.keys(env)) {
    if (!ENV_KEY.test(key)) throw new ThawError('THAW_E_CONFIG_INVALID', `environment variable name ${JSON.stringify(key)} is not valid: use letters, digits and underscores, not starting with a digit`);
    if (RESERVED_ENV.test(key)) throw new ThawError('THAW_E_ENV_RESERVED', `environment variable ${key} is reserved: the runtime sets it`);
  }
  const bytes = Buffer.byteLength(JSON.stringify(env));
  if (bytes > MAX_ENV_BYTES) throw new ThawError('THAW_E_CONFIG_INVALID', `environment variables take ${bytes} bytes; the limit is ${MAX_ENV_BYTES}`);
}

export const routingSchema = z.strictObject({ version: z.string().regex(/^[1-9]\d*$/, 'must be a published version number'), weight: z.number().min(0).max(1) });

/** zod parse whose failure becomes a ThawError naming the field and the rule. */
export function parseOr<T extends z.ZodType>(code: ErrorCode, schema: T, value: unknown, label?: string): z.infer<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = label ?? (issue.path.length ? issue.path.join('.') : 'value');
  throw new ThawError(code, `${field}: ${issue.message}`, { details: { field, issues: r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) } });
}

/** Lambda's limits on tags: at most 50 per function, keys 1-128 and values 0-256 characters, aws: reserved. */
export const MAX_TAGS = 50;
const TAG_TEXT = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

export function validateTags(tags: unknown, field = 'Tags'): Record<string, string> {
  if (typeof tags !== 'object' || tags === null || Array.isArray(tags)) throw new ThawError('THAW_E_TAGS_INVALID', `${field} must be an object of tag keys to string values`);
  const entries = Object.entries(tags as Record<string, unknown>);
  if (entries.length > MAX_TAGS) throw new ThawError('THAW_E_TAGS_INVALID', `${field} has ${entries.length} tags; a function has at most ${MAX_TAGS}`);
  for (const [k, v] of entries) validateTag(k, v, field);
  return Object.fromEntries(entries) as Record<string, string>;
}

export function validateTagKey(key: unknown, field = 'TagKeys'): string {
  if (typeof key !== 'string' || key.length < 1 || [...key].length > 128 || !TAG_TEXT.test(key)) {
    throw new ThawError('THAW_E_TAGS_INVALID', `${field}: tag key ${JSON.stringify(key)} is not valid: 1-128 letters, digits, spaces and _ . : / = + - @`);
  }
  if (/^aws:/i.test(key)) throw new ThawError('THAW_E_TAGS_INVALID', `${field}: tag key ${JSON.stringify(key)} starts with aws:, which is reserved for AWS`);
  return key;
}

function validateTag(key: string, value: unknown, field: string) {
  validateTagKey(key, field);
  if (typeof value !== 'string' || [...value].length > 256 || !TAG_TEXT.test(value)) {
    throw new ThawError('THAW_E_TAGS_INVALID', `${field}.${key}: the value must be a string of 0-256 letters, digits, spaces and _ . : / = + - @`);
  }
}
