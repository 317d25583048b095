// The domain vocabulary every component shares: functions, versions, aliases, invocation records, phases,
// instance states. Types only; imports nothing.

/** Runtime names a function may give, stored and echoed as given; `nodejs24` is Thaw's first spelling of nodejs24.x. */
export const RUNTIMES = ['nodejs20.x', 'nodejs22.x', 'nodejs24.x', 'nodejs24'] as const;
export type Runtime = (typeof RUNTIMES)[number];

/** Everything that decides how an instance of a version behaves. Immutable once a version is published. */
export interface FunctionConfig {
  readonly runtime: Runtime;
  /** FILE.EXPORT, e.g. `index.handler` or `src/app.main`. */
  readonly handler: string;
  readonly memoryMb: number;
  /** Size of the instance's private /tmp (Lambda's EphemeralStorage), 512-10240 MB; absent in versions made before it existed. */
  readonly ephemeralStorageMb?: number;
  readonly timeoutMs: number;
  readonly env: Readonly<Record<string, string>>;
  readonly description: string;
  /** How many invocations one instance serves at once (Lambda: 1). */
  readonly instanceConcurrency: number;
  /** Where its instances may connect through the egress proxy (src/network/egress.ts); absent: public. */
  readonly egress?: EgressPolicy;
  /** Thaw private networks its instances join (Lambda's VpcConfig.SubnetIds); absent: none. */
  readonly vpc?: VpcConfig;
  /** Lambda's execution role ARN, kept and echoed as given (Thaw grants nothing by it); absent: DEFAULT_ROLE. */
  readonly role?: string;
  /** Lambda's TracingConfig.Mode: Active marks fresh trace headers Sampled=1; absent: PassThrough. */
  readonly tracingMode?: 'Active' | 'PassThrough';
  /** Lambda's SnapStart.ApplyOn: None builds no snapshot of its published versions; absent: PublishedVersions. */
  readonly snapStart?: 'PublishedVersions' | 'None';
  /** Lambda's LoggingConfig (format and levels); absent: Text, no level filtering. */
  readonly logging?: LoggingSettings;
  /** Hex SHA-256 of the package as uploaded; names the blob in the code store. */
  readonly codeSha256: string;
  readonly codeSize: number;
  /** Layer versions extracted at /opt in this order (later ones over earlier ones); absent: none. */
  readonly layers?: readonly LayerRef[];
  /** The package's compiled tree as a read-only image in the origin, mounted instead of unpacked; absent: unpacked (made before images, or no mksquashfs at deploy). */
  readonly codeImage?: CodeImage;
}

/** A package image (src/codestore/images.ts): content-addressed like the package, of the tree one compiler made. */
export interface CodeImage {
  readonly sha256: string;
  readonly size: number;
  readonly format: 'squashfs';
  /** The compiler tag of the tree inside (a node whose compiler differs unpacks the package instead). */
  readonly compiler: string;
}

/**
 * The files a package's init read, recorded at its first start (by handler: another entry point reads other
 * files), and their bundle in the origin: what a cold start on an empty cache fetches first (codestore/cache.ts).
 */
export interface InitSet {
  readonly codeSha256: string;
  readonly handler: string;
  /** The zip of those files, content-addressed in the origin. */
  readonly bundleSha256: string;
  /** Relative paths of the compiled tree, '/'-separated. */
  readonly files: readonly string[];
  /** Their total size, unpacked. */
  readonly bytes: number;
}

export const APPLICATION_LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'] as const;
export const SYSTEM_LOG_LEVELS = ['DEBUG', 'INFO', 'WARN'] as const;

/**
 * How a function's logs are written (Lambda's LoggingConfig): Text lines, or JSON records whose levels
 * filter what is kept, the function's console.* by applicationLogLevel, the platform's lines by
 * systemLogLevel. As on Lambda, levels exist only with JSON (both INFO unless given).
 */
export type LoggingSettings =
  | { readonly format: 'Text' }
  | { readonly format: 'JSON'; readonly applicationLogLevel: (typeof APPLICATION_LOG_LEVELS)[number]; readonly systemLogLevel: (typeof SYSTEM_LOG_LEVELS)[number] };

/**
 * A layer version as a function version holds it: its ARN and its content, so the version keeps working
 * after the layer version is deleted (as on Lambda).
 */
export interface LayerRef {
  readonly arn: string;
  readonly codeSha256: string;
  readonly codeSize: number;
}

/** A published layer version (PublishLayerVersion): immutable content, content-addressed like packages. */
export interface LayerVersion {
  readonly name: string;
  /** 1, 2, ...; never reused, even after a delete. */
  readonly version: number;
  readonly description: string;
  /** As given (e.g. nodejs22.x); Lambda records them and filters lists by them, it does not enforce them. */
  readonly compatibleRuntimes: readonly string[];
  readonly compatibleArchitectures: readonly string[];
  readonly licenseInfo: string | null;
  readonly codeSha256: string;
  readonly codeSize: number;
  readonly createdAt: number;
}

/** One statement of a layer version's policy (AddLayerVersionPermission). */
export interface LayerPermission {
  readonly layerName: string;
  readonly version: number;
  readonly statementId: string;
  readonly action: string;
  readonly principal: string;
  readonly organizationId: string | null;
}

/** `none`, `public` (any public address) or `allow` (the rules: HOST[:PORTS] or CIDR[:PORTS]). */
export interface EgressPolicy {
  readonly mode: 'none' | 'public' | 'allow';
  readonly allow?: readonly string[];
}

export interface VpcConfig {
  /** Names of Thaw networks (`thaw network create`). */
  readonly networks: readonly string[];
  /** Names of Thaw security groups: with any, only the destinations they allow are reachable on the network. */
  readonly securityGroups?: readonly string[];
}

/** A named allow-list of destinations on a private network (Lambda's SecurityGroupIds; egress rules only). */
export interface SecurityGroupRecord {
  readonly name: string;
  /** `CIDR[:PORTS][/tcp|/udp]`: PORTS N, N-M or N|M; no ports: every port and protocol. */
  readonly allow: readonly string[];
  readonly description: string;
  readonly createdAt: number;
}

export const LATEST = '$LATEST';

/** Lambda's default /tmp size, for versions that do not say. */
export const DEFAULT_EPHEMERAL_STORAGE_MB = 512;

/** The execution role a function reports when it was created without one. */
export const DEFAULT_ROLE = 'arn:aws:iam::000000000000:role/thaw';
export const ephemeralStorageMb = (c: FunctionConfig) => c.ephemeralStorageMb ?? DEFAULT_EPHEMERAL_STORAGE_MB;

export interface FunctionVersion {
  readonly functionName: string;
  /** `$LATEST` or a published number as a string ("1", "2", ...). */
  readonly version: string;
  /** Changes on every change of $LATEST; instances are keyed by it so an update never reuses stale ones. */
  readonly revisionId: string;
  readonly config: FunctionConfig;
  readonly createdAt: number;
}

export interface FunctionRecord {
  readonly name: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly latest: FunctionVersion;
  /** Highest published version number, 0 when none. */
  readonly lastPublished: number;
  /** Per-function concurrency limit (PutFunctionConcurrency); null means the node's limit. */
  readonly reservedConcurrency: number | null;
  /** Days its log lines are kept (Thaw's setting; Lambda keeps it on the log group); null or absent: no age limit. */
  readonly logRetentionDays?: number | null;
}

export interface AliasRouting {
  /** The additional version and the share of traffic (0..1) it receives. */
  readonly version: string;
  readonly weight: number;
}

export interface Alias {
  readonly functionName: string;
  readonly name: string;
  readonly functionVersion: string;
  readonly routing: AliasRouting | null;
  readonly description: string;
  readonly revisionId: string;
}

/**
 * The phases of DESIGN.md's cold-start anatomy, in order. `schedule` is picking an instance; a warm
 * invocation has only `schedule` and `handler`.
 */
export const PHASES = ['schedule', 'sandbox', 'code', 'unpack', 'env', 'network', 'runtime', 'init', 'handler'] as const;
export type PhaseName = (typeof PHASES)[number];

export interface PhaseSpan {
  readonly name: PhaseName;
  /** Milliseconds since the invocation was received. */
  readonly offsetMs: number;
  readonly durationMs: number;
}

/**
 * How the invocation found its instance: the rung of the instance ladder it took, fastest first.
 * warm: an idle initialized instance; thawed: a frozen one, resumed; paged: a frozen one whose memory
 * was pushed out to swap, resumed (its pages come back as they are touched); restored: a new process from the
 * version's snapshot (user init already done); pooled: a started generic runtime, specialized now;
 * cold: everything from process start.
 */
export const START_KINDS = ['warm', 'thawed', 'paged', 'restored', 'pooled', 'cold'] as const;
export type StartKind = (typeof START_KINDS)[number];

/**
 * `provision`: the init of a reserved instance and `prewarm`: of one started ahead of demand by a policy,
 * recorded (and billed) without a handler run. `timer`: a scheduled invocation; `warmup`: a scheduled
 * warm-up, whose event and context say so (never counted as a user invocation).
 */
export type InvocationTrigger = 'api' | 'http' | 'event' | 'invoke' | 'provision' | 'prewarm' | 'timer' | 'warmup';

/** Triggers that are traffic from users (what invocation counts and cold-start rates count). */
export const USER_TRIGGERS: readonly InvocationTrigger[] = ['api', 'http', 'event', 'invoke', 'timer'];

export type InvocationOutcome = 'success' | 'error' | 'timeout' | 'crash' | 'init_error' | 'throttled' | 'aborted' | 'platform_error';

/** An invocation's place in a W3C trace (src/core/trace.ts makes and reads them). */
export interface TraceContext {
  /** 32 lowercase hex digits: the caller's trace, or a new one. */
  readonly traceId: string;
  /** The caller's span (a traceparent header, or the calling invocation's handler span); null: a new trace. */
  readonly parentSpanId: string | null;
  /**
   * The span the handler runs in, chosen ahead of time: it is the parent the function sees in TRACEPARENT and
   * the parent of the invocations it makes with context.invoke, before any span is exported.
   */
  readonly handlerSpanId: string;
  readonly sampled: boolean;
}

export interface InvocationRecord {
  readonly id: string;
  readonly functionName: string;
  /** The version that ran (after alias resolution); empty when it never got that far. */
  readonly version: string;
  /** What the caller asked for: $LATEST, a version or an alias. */
  readonly qualifier: string;
  readonly instanceId: string | null;
  readonly start: StartKind | null;
  readonly trigger: InvocationTrigger;
  readonly callerInvocationId: string | null;
  /** Epoch ms when the platform received the invocation. */
  readonly receivedAt: number;
  readonly durationMs: number;
  readonly phases: readonly PhaseSpan[];
  /** User code init (Lambda's Init Duration); 0 for warm starts. */
  readonly initMs: number;
  readonly handlerMs: number;
  /** ceil(init + handler): billing starts at user code init, platform time is never charged. */
  readonly billedMs: number;
  readonly memoryMb: number;
  readonly outcome: InvocationOutcome;
  readonly errorType: string | null;
  readonly errorMessage: string | null;
  /** Its W3C trace (absent from records made before traces were): what the OTLP exporter builds spans under. */
  readonly trace?: TraceContext | null;
  /** Why a new instance had to be started (cold, pooled or restored), named by the agent when it began; absent when warm. */
  readonly cause?: ColdStartCause;
  /** Where a cluster's control plane placed it, and why (absent when one process runs everything). */
  readonly placement?: { readonly agent: string; readonly reason: string } | null;
}

/** What made an invocation start an instance (`thaw why`). */
export const COLD_START_CAUSES = ['first-invocation', 'new-version', 'expired-keep-alive', 'evicted-memory', 'burst', 'crashed', 'scaled-in', 'reserved-exhausted', 'retired'] as const;
export type ColdStartCauseKind = (typeof COLD_START_CAUSES)[number];

/** How the last instance of a version went: a policy's stop, an eviction, a scale-in, a death, a kill. */
export interface InstanceEnd {
  readonly instanceId: string;
  readonly how: 'stopped' | 'evicted' | 'scaled-in' | 'crashed' | 'killed' | 'retired';
  readonly reason: string;
  /** Epoch ms when it ended. */
  readonly endedAt: number;
  /** How long it had been idle when it ended; null when it was not resting (busy, starting). */
  readonly idleMs: number | null;
  /** The function's policy then (a spec string). */
  readonly policy: string;
  /** An eviction: the function whose start needed the memory, the node's budget and what was loaded, MB. */
  readonly evictedFor?: string;
  readonly budgetMb?: number;
  readonly loadedMb?: number;
  readonly neededMb?: number;
  /** Loaded instances that stayed, by function (the eviction's winners). */
  readonly kept?: readonly string[];
}

/** The facts a cold start's cause is named from, as the agent had them when the start began. */
export interface ColdStartFacts {
  /** Whether this node ever started an instance of this function, and of this version (revision). */
  readonly functionSeen: boolean;
  readonly versionSeen: boolean;
  /** The version the function's instances ran before, when another. */
  readonly previousVersion: string | null;
  /** The newest end of an instance of this version; null when none ended. */
  readonly lastEnd: InstanceEnd | null;
  /** From the moment the last one went idle to this arrival, ms (what a keep-alive had to cover). */
  readonly idleGapMs: number | null;
  /** Live instances of this version, all of them busy or starting for another invocation. */
  readonly busy: number;
  readonly instanceConcurrency: number;
  /** Reserved instances configured for this version and how many were busy. */
  readonly reserved: { readonly configured: number; readonly busy: number } | null;
  /** The version prewarm: none started, or one under way that the invocation waited for. */
  readonly versionPrewarm: 'none' | 'waited';
  /** Live instances of the function's other versions when it started. */
  readonly otherVersionInstances: number;
  /** The newest end of an instance of another version (revision) of the function, when it is newer than any of this one's. */
  readonly otherVersionEnd?: InstanceEnd | null;
  readonly policy: string;
}

export interface ColdStartCause {
  readonly cause: ColdStartCauseKind;
  readonly detail: string;
  readonly facts: ColdStartFacts;
}

/** Instance lifecycle; the transition table lives in agent/instance.ts. */
export const INSTANCE_STATES = ['starting', 'initializing', 'idle', 'busy', 'frozen', 'paged', 'stopping', 'gone'] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];

/** A version's snapshot (user init already run): built in the background when the version is published. */
export interface SnapshotRecord {
  readonly functionName: string;
  readonly version: string;
  readonly status: 'pending' | 'ready' | 'failed';
  /** Why it failed (or what it is doing while pending). */
  readonly reason: string | null;
  /** Names the encrypted blob beside the packages. */
  readonly sha256: string | null;
  readonly sizeBytes: number | null;
  readonly buildMs: number | null;
  readonly updatedAt: number;
}

/** A function's own keep-alive/prewarm policy (a spec such as hybrid:4h), overriding the node default. */
export interface FunctionPolicy {
  readonly functionName: string;
  readonly spec: string;
  readonly updatedAt: number;
}

/**
 * A timer trigger: invokes the function on a schedule. `invoke` delivers an EventBridge scheduled event;
 * `warmup` delivers a warm-up event (and context.warmup) and is never counted as a user invocation.
 */
export interface Schedule {
  readonly id: string;
  readonly functionName: string;
  readonly qualifier: string;
  /** rate(5 minutes) or cron(*\/5 * * * *) */
  readonly expression: string;
  readonly kind: 'invoke' | 'warmup';
  readonly payload: string | null;
  readonly enabled: boolean;
  /** Epoch ms of the next firing. */
  readonly nextAt: number;
  readonly lastAt: number | null;
  readonly createdAt: number;
}

/** Reserved (provisioned) instances of a version or alias, kept initialized by the agent. */
export interface ProvisionedConfig {
  readonly functionName: string;
  /** A version number or an alias name (never $LATEST, as on Lambda). */
  readonly qualifier: string;
  readonly count: number;
  readonly updatedAt: number;
}

export const KEY_ROLES = ['admin', 'developer', 'invoker', 'agent'] as const;
/**
 * admin: everything, keys included; developer: functions and invocations, not keys; invoker: invoke only;
 * agent: only the cluster routes a `thaw agent` calls (join, heartbeat, telemetry, code).
 */
export type KeyRole = (typeof KEY_ROLES)[number];

/** An access key for SigV4-signed API calls; its secret is stored encrypted (AES-256-GCM). */
/** A Thaw private network: a bridge on each node; functions join it through VpcConfig.SubnetIds. */
export interface NetworkRecord {
  readonly name: string;
  /** IPv4 CIDR; instances get addresses from .2 up; .1 is the host's address when hostAccess is on. */
  readonly subnet: string;
  /** Whether this host has an address (.1) on the network, so services it runs there are reachable. */
  readonly hostAccess: boolean;
  readonly createdAt: number;
}

export interface AccessKey {
  readonly id: string;
  /** base64 of iv (12) | tag (16) | ciphertext, under the node's access-key key. */
  readonly secretSealed: string;
  readonly role: KeyRole;
  /** Functions the key may act on; null for all. */
  readonly functions: readonly string[] | null;
  readonly createdAt: number;
  readonly revokedAt: number | null;
}

export interface LogLine {
  readonly seq: number;
  readonly at: number;
  readonly functionName: string;
  readonly version: string;
  readonly instanceId: string;
  readonly invocationId: string | null;
  readonly stream: 'stdout' | 'stderr' | 'platform';
  readonly line: string;
}

export interface QueuedEvent {
  readonly id: string;
  readonly functionName: string;
  readonly qualifier: string;
  readonly payload: string;
  readonly attempts: number;
  readonly enqueuedAt: number;
  readonly nextAttemptAt: number;
  /**
   * Times it was taken for delivery, this time included (0 until then). More than attempts + 1 means an
   * earlier delivery was cut off (the server died mid-way): it may have run already.
   */
  readonly leases?: number;
  /** Destination hops that led to this event (0 for one a client sent); loops stop at a bound. */
  readonly depth?: number;
}

/** Lambda's asynchronous-invocation settings of a function (per qualifier). */
export interface EventInvokeConfig {
  readonly functionName: string;
  readonly qualifier: string;
  /** 0-2 retries after the first attempt. */
  readonly maximumRetryAttempts: number;
  /** 60-21600 s from acceptance after which an event is no longer tried. */
  readonly maximumEventAgeSeconds: number;
  /** Function ARNs (or names) that get Lambda's invocation record on success / final failure. */
  readonly onSuccess: string | null;
  readonly onFailure: string | null;
  readonly updatedAt: number;
}

/** An asynchronous invocation that failed for good, kept for the user to read (and redrive). */
export interface DeadLetter {
  readonly id: string;
  readonly functionName: string;
  readonly qualifier: string;
  readonly payload: string;
  /** RetriesExhausted, EventAgeExceeded or a platform refusal (function gone, ...). */
  readonly condition: string;
  readonly errorType: string | null;
  readonly errorMessage: string | null;
  readonly attempts: number;
  readonly enqueuedAt: number;
  readonly failedAt: number;
}

/** Lambda's CORS settings of a function URL (field names as the API spells them). */
export interface FunctionUrlCors {
  readonly AllowCredentials?: boolean;
  readonly AllowHeaders?: readonly string[];
  readonly AllowMethods?: readonly string[];
  readonly AllowOrigins?: readonly string[];
  readonly ExposeHeaders?: readonly string[];
  readonly MaxAge?: number;
}

/** A function URL: an HTTP endpoint of $LATEST or an alias, served at /lambda-url/{urlId}/ (gateway/function-urls.ts). */
export interface FunctionUrlRecord {
  readonly functionName: string;
  /** $LATEST or an alias name (never a version number, as on Lambda). */
  readonly qualifier: string;
  /** 32 lowercase letters and digits, unique across functions. */
  readonly urlId: string;
  readonly authType: 'NONE' | 'AWS_IAM';
  readonly cors: FunctionUrlCors | null;
  readonly invokeMode: 'BUFFERED' | 'RESPONSE_STREAM';
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** One statement of a function's resource-based policy, in the IAM form GetPolicy returns. */
export interface PermissionStatement {
  readonly Sid: string;
  readonly Effect: 'Allow';
  /** "*", an IAM principal ({ AWS: arn }; a Thaw key is arn:aws:iam::000000000000:user/KEYID) or an AWS service. */
  readonly Principal: '*' | { readonly AWS: string } | { readonly Service: string };
  readonly Action: string;
  readonly Resource: string;
  /** Operator → condition key → value, e.g. StringEquals → lambda:FunctionUrlAuthType → NONE. */
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/** The resource-based policy of a function ($LATEST: the unqualified function) or of one version or alias. */
export interface ResourcePolicy {
  readonly functionName: string;
  readonly qualifier: string;
  readonly revisionId: string;
  readonly statements: readonly PermissionStatement[];
  readonly updatedAt: number;
}
