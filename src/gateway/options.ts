// Thaw's server options in three stages: what a user gives (CLI flags, env), validated and defaulted here
// with zod, then frozen with units in the names. Imports src/core, zod and node built-ins.
import { createHash } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { ThawError } from '../core/errors.ts';
import { parseOr } from '../control/index.ts';
import { parseS3Url, type S3Location } from '../codestore/index.ts';
import { probeNamespaces } from '../sandbox/index.ts';
import { DEFAULT_POLICY, parsePolicy, type PolicySpec } from '../policies/index.ts';

export const userOptionsSchema = z.strictObject({
  port: z.number().int().min(0).max(65535).default(8080),
  host: z.string().min(1).default('127.0.0.1'),
  /** SQLite file, package origin, anything that must survive a restart. */
  dataDir: z.string().min(1).default('.thaw'),
  /** Node-local unpacked code; tmpfs by default where there is one. */
  cacheDir: z.string().min(1).optional(),
  region: z.string().regex(/^[a-z0-9-]+$/).default('us-east-1'),
  maxPackageMb: z.number().positive().max(10_240).default(50),
  maxUnpackedMb: z.number().positive().max(102_400).default(250),
  /** Longest a deploy may take to read Code.S3Bucket/S3Key, whole body included (a trickling S3 is cut off). */
  codeS3TimeoutMs: z.number().int().min(100).default(60_000),
  /** A fixed keep-alive: shorthand for policy fixed:<ms>ms. */
  idleTimeoutMs: z.number().int().min(0).optional(),
  /** Keep-alive/prewarm policy of functions without their own (fixed:10m, hybrid:4h, gdsf:16g, thaw). */
  policy: z.string().optional(),
  /** Memory for loaded instances on this node, MB; beyond it idle ones are evicted (Greedy-Dual). Default: 75 % of RAM. */
  memoryBudgetMb: z.number().positive().optional(),
  /** Swap the paged tier may fill, MB (its pages uncompressed); a budget apart from RAM. Default: 90 % of the swap areas' size. */
  swapBudgetMb: z.number().positive().optional(),
  /** A safety re-plan of every function (decisions are otherwise taken as events happen). */
  policySweepMs: z.number().int().min(10).default(30_000),
  /** Idle time after which an instance is frozen (no CPU, memory kept); -1 never freezes. */
  freezeAfterMs: z.number().int().min(-1).default(10_000),
  /**
   * Time frozen after which an instance's memory goes to swap (the paged tier), whatever the policy; -1
   * never; absent: the policy chooses (src/policies/tiers.ts). Needs swap.
   */
  pageAfterMs: z.number().int().min(-1).optional(),
  /** Set up a zram swap device of this size (MB) for the paged tier, released on stop (root only). */
  zramMb: z.number().int().min(16).max(1_048_576).optional(),
  /** Generic runtimes kept started per runtime kind and memory size; 0 disables the pool. */
  poolSize: z.number().int().min(0).max(64).default(2),
  poolRefillDelayMs: z.number().int().min(0).default(100),
  /** Bound of the node-local unpacked code cache; least recently used packages are evicted beyond it. */
  codeCacheMb: z.number().positive().default(4096),
  /** Packages whose unpacked tree is smaller get no squashfs image: unpacking them costs less than building one per deploy. */
  imageMinKb: z.number().int().min(0).default(1024),
  /** V8 compile cache per package, shared by its instances on this node. */
  compileCache: z.boolean().default(true),
  /** Warm a new version of a function with traffic before its first request ($LATEST changed, a version published). */
  versionPrewarm: z.boolean().default(true),
  /** Build a snapshot (user init already run) of every published version, restored on cold starts. */
  snapshots: z.boolean().default(true),
  snapshotTimeoutMs: z.number().int().min(1000).max(30 * 60_000).default(5 * 60_000),
  concurrencyLimit: z.number().int().min(1).max(100_000).default(100),
  startTimeoutMs: z.number().int().min(100).default(10_000),
  initTimeoutMs: z.number().int().min(100).default(10_000),
  keepInvocations: z.number().int().min(100).default(100_000),
  keepLogLinesPerFunction: z.number().int().min(100).default(20_000),
  /** Delays before the retries of a failed asynchronous (Event) invocation; Lambda makes two. */
  eventRetryDelaysMs: z.array(z.number().int().min(0)).max(10).default([60_000, 120_000]),
  eventPollIntervalMs: z.number().int().min(10).default(500),
  /** Longest function-to-function chain through context.invoke. */
  maxCallDepth: z.number().int().min(1).max(64).default(16),
  /** Log each request to stderr. */
  accessLog: z.boolean().default(false),
  /** How instances are confined: namespaces where the host allows it (auto), or always/never. */
  sandbox: z.enum(['auto', 'namespaces', 'process']).default('auto'),
  /** Where packages, layers and snapshots live durably: s3://BUCKET[/PREFIX]; absent: the data dir. */
  origin: z.string().min(1).optional(),
  /**
   * The store: a SQLite file path (or sqlite:PATH), or a postgres:// URL that several Thaw processes share.
   * Default: thaw.db in the data dir.
   */
  store: z.string().min(1).optional(),
  /**
   * False for a cluster's control plane (thaw up --no-agent): invocations go to remote agents (thaw agent),
   * so this node starts no instances, keeps no runtime pool and builds no snapshots.
   */
  localAgent: z.boolean().default(true),
  /**
   * A bearer token that lets a scraper read /metrics once access keys exist (Prometheus cannot sign
   * with SigV4); without it, /metrics then needs a signed request of a key that may read.
   */
  metricsToken: z.string().min(16, 'the metrics token must be at least 16 characters').regex(/^[\x21-\x7e]+$/, 'the metrics token must be printable ASCII without spaces').optional(),
  /** Distinct function names /metrics labels apart; later ones are counted as function="_other". */
  metricsMaxFunctions: z.number().int().min(1).max(100_000).default(1000),
});

export type UserOptions = z.input<typeof userOptionsSchema>;

export interface ResolvedOptions {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  readonly cacheDir: string;
  readonly region: string;
  readonly maxPackageBytes: number;
  readonly maxUnpackedBytes: number;
  readonly codeS3TimeoutMs: number;
  readonly policy: PolicySpec;
  readonly memoryBudgetMb: number;
  /** Null: 90 % of the swap areas' size at the time (they may come and go, e.g. --zram). */
  readonly swapBudgetMb: number | null;
  readonly policySweepMs: number;
  readonly freezeAfterMs: number;
  /** null: the policy chooses when to page out. */
  readonly pageAfterMs: number | null;
  readonly zramBytes: number | null;
  readonly poolSize: number;
  readonly poolRefillDelayMs: number;
  readonly compileCache: boolean;
  readonly codeCacheBytes: number;
  readonly imageMinBytes: number;
  readonly snapshots: boolean;
  readonly versionPrewarm: boolean;
  readonly snapshotTimeoutMs: number;
  readonly concurrencyLimit: number;
  readonly startTimeoutMs: number;
  readonly initTimeoutMs: number;
  readonly keepInvocations: number;
  readonly keepLogLinesPerFunction: number;
  readonly eventRetryDelaysMs: readonly number[];
  readonly eventPollIntervalMs: number;
  readonly maxCallDepth: number;
  readonly accessLog: boolean;
  readonly sandbox: 'namespaces' | 'process';
  /** The S3 bucket and prefix of the origin; null: the data dir's blobs/ and snapshots/. */
  readonly origin: S3Location | null;
  /** What openStore opens: a SQLite path or a postgres:// URL (with its password: never print it as is). */
  readonly store: string;
  readonly localAgent: boolean;
  readonly metricsToken: string | null;
  readonly metricsMaxFunctions: number;
  /** Why `auto` chose the process driver (null when it did not). */
  readonly sandboxFallback: string | null;
}

export function resolveOptions(input: UserOptions): ResolvedOptions {
  const o = parseOr('THAW_E_CONFIG_INVALID', userOptionsSchema, input);
  const dataDir = resolve(o.dataDir);
  return Object.freeze({
    port: o.port,
    host: o.host,
    dataDir,
    cacheDir: o.cacheDir ? resolve(o.cacheDir) : defaultCacheDir(dataDir),
    region: o.region,
    maxPackageBytes: Math.round(o.maxPackageMb * 1024 * 1024),
    maxUnpackedBytes: Math.round(o.maxUnpackedMb * 1024 * 1024),
    codeS3TimeoutMs: o.codeS3TimeoutMs,
    policy: o.policy !== undefined ? parsePolicy(o.policy) : o.idleTimeoutMs !== undefined ? { kind: 'fixed' as const, ttlMs: o.idleTimeoutMs } : DEFAULT_POLICY,
    memoryBudgetMb: o.memoryBudgetMb ?? Math.floor((totalmem() / 1024 / 1024) * 0.75),
    swapBudgetMb: o.swapBudgetMb ?? null,
    policySweepMs: o.policySweepMs,
    freezeAfterMs: o.freezeAfterMs,
    pageAfterMs: o.pageAfterMs ?? null,
    zramBytes: o.zramMb === undefined ? null : o.zramMb * 1024 * 1024,
    poolSize: o.poolSize,
    poolRefillDelayMs: o.poolRefillDelayMs,
    compileCache: o.compileCache,
    codeCacheBytes: Math.round(o.codeCacheMb * 1024 * 1024),
    imageMinBytes: o.imageMinKb * 1024,
    snapshots: o.snapshots,
    versionPrewarm: o.versionPrewarm,
    snapshotTimeoutMs: o.snapshotTimeoutMs,
    concurrencyLimit: o.concurrencyLimit,
    startTimeoutMs: o.startTimeoutMs,
    initTimeoutMs: o.initTimeoutMs,
    keepInvocations: o.keepInvocations,
    keepLogLinesPerFunction: o.keepLogLinesPerFunction,
    eventRetryDelaysMs: Object.freeze([...o.eventRetryDelaysMs]),
    eventPollIntervalMs: o.eventPollIntervalMs,
    maxCallDepth: o.maxCallDepth,
    accessLog: o.accessLog,
    origin: o.origin === undefined ? null : parseS3Url(o.origin),
    store: o.store ?? join(dataDir, 'thaw.db'),
    metricsToken: o.metricsToken ?? null,
    metricsMaxFunctions: o.metricsMaxFunctions,
    ...chooseSandbox(o.sandbox),
    // A control plane runs no instances: nothing to confine, pool or snapshot here.
    ...(o.localAgent ? { localAgent: true } : { localAgent: false, sandbox: 'process' as const, sandboxFallback: null, poolSize: 0, snapshots: false }),
  });
}

/** `auto` confines wherever the host allows it; asking for namespaces on a host that cannot is an error. */
function chooseSandbox(wanted: 'auto' | 'namespaces' | 'process'): { sandbox: 'namespaces' | 'process'; sandboxFallback: string | null } {
  if (wanted === 'process') return { sandbox: 'process', sandboxFallback: null };
  const probe = probeNamespaces();
  if (probe.ok) return { sandbox: 'namespaces', sandboxFallback: null };
  if (wanted === 'namespaces') throw new ThawError('THAW_E_SANDBOX_UNAVAILABLE', `the namespaces sandbox cannot run here: ${probe.reason}; to fix: ${probe.fix}`);
  return { sandbox: 'process', sandboxFallback: `${probe.reason} (to confine instances: ${probe.fix})` };
}

/** Unpacked code belongs on tmpfs: many small files on a disk make cold starts slow. One dir per data dir. */
function defaultCacheDir(dataDir: string): string {
  const tag = createHash('sha256').update(dataDir).digest('hex').slice(0, 12);
  try {
    accessSync('/dev/shm', constants.W_OK);
    return `/dev/shm/thaw-${process.getuid?.() ?? 'u'}-${tag}`;
  } catch {
    return resolve(dataDir, 'cache');
  }
}
