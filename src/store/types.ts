// The Store interface, owned by its consumers (control, agent, telemetry). Every implementation (SQLite,
// PostgreSQL) passes the conformance suite in store.case.ts. All methods are async so a network database
// fits behind the same interface.
import type { LayerPermission, LayerVersion, AccessKey, NetworkRecord, SecurityGroupRecord, DeadLetter, EventInvokeConfig, Alias, FunctionPolicy, FunctionRecord, FunctionUrlRecord, ResourcePolicy, FunctionVersion, InvocationRecord, LogLine, ProvisionedConfig, QueuedEvent, Schedule, SnapshotRecord, InitSet } from '../core/types.ts';

export interface InvocationQuery {
  functionName?: string;
  /** Only records received strictly before this epoch ms (for paging back). */
  before?: number;
  limit: number;
}

export interface LogQuery {
  functionName: string;
  /** Only lines with seq greater than this. */
  afterSeq?: number;
  invocationId?: string;
  limit: number;
}

export interface CallEdge {
  readonly caller: string;
  readonly callee: string;
  readonly count: number;
  readonly lastAt: number;
}

export interface Store extends AsyncDisposable {
  readonly kind: string;

  /** Throws THAW_E_FUNCTION_EXISTS if the name is taken. Stores its tags with it, in one step. */
  createFunction(fn: FunctionRecord, tags?: Readonly<Record<string, string>>): Promise<void>;
  getFunction(name: string): Promise<FunctionRecord | null>;
  listFunctions(): Promise<FunctionRecord[]>;
  /** Replaces $LATEST. With expectedRevisionId, throws THAW_E_REVISION_MISMATCH when it changed meanwhile. */
  updateLatest(name: string, latest: FunctionVersion, updatedAt: number, expectedRevisionId?: string): Promise<void>;
  setReservedConcurrency(name: string, limit: number | null): Promise<void>;
  /** Sets how many days a function's log lines are kept (null: no age limit); THAW_E_FUNCTION_NOT_FOUND when missing. */
  setLogRetention(name: string, days: number | null): Promise<void>;
  /** Deletes the function with its versions, aliases, logs and queued events. */
  deleteFunction(name: string): Promise<void>;

  /** A function's tags by key; null when there is no such function. */
  getTags(name: string): Promise<Record<string, string> | null>;
  /** Adds or replaces tags, atomically refusing (THAW_E_TAGS_INVALID) a result above maxTags; returns them all. */
  tagFunction(name: string, tags: Readonly<Record<string, string>>, maxTags: number): Promise<Record<string, string>>;
  /** Removes these keys (absent ones are no error). */
  untagFunction(name: string, keys: readonly string[]): Promise<void>;

  /**
   * Publishes $LATEST as the next version number, atomically. Returns the newest published version instead
   * when it has the same revision or the same code and configuration (Lambda does not publish duplicates).
   * A description given replaces $LATEST's in the version.
   */
  publishVersion(name: string, createdAt: number, description?: string): Promise<FunctionVersion>;
  getVersion(name: string, version: string): Promise<FunctionVersion | null>;
  listVersions(name: string): Promise<FunctionVersion[]>;
  deleteVersion(name: string, version: string): Promise<void>;

  /** Throws THAW_E_ALIAS_EXISTS when create is true and it exists, THAW_E_ALIAS_NOT_FOUND when false and missing. */
  putAlias(alias: Alias, create: boolean): Promise<void>;
  getAlias(functionName: string, name: string): Promise<Alias | null>;
  listAliases(functionName: string): Promise<Alias[]>;
  deleteAlias(functionName: string, name: string): Promise<void>;

  /** True if any version of any function still uses this package, as its code or as a layer, or a layer version holds it. */
  isCodeInUse(codeSha256: string): Promise<boolean>;

  /** Publishes the layer's next version, atomically (numbers are never reused, even after a delete). */
  publishLayerVersion(layer: Omit<LayerVersion, 'version'>): Promise<LayerVersion>;
  getLayerVersion(name: string, version: number): Promise<LayerVersion | null>;
  /** Newest first; every layer's versions (by name) when no name is given. */
  listLayerVersions(name?: string): Promise<LayerVersion[]>;
  /** Returns whether there was one; its permissions go with it. */
  deleteLayerVersion(name: string, version: number): Promise<boolean>;
  /** Throws THAW_E_LAYER_PERMISSION_EXISTS when the statement id is taken, THAW_E_LAYER_NOT_FOUND when the version is missing. */
  addLayerPermission(p: LayerPermission): Promise<void>;
  listLayerPermissions(name: string, version: number): Promise<LayerPermission[]>;
  /** Returns whether there was one. */
  removeLayerPermission(name: string, version: number, statementId: string): Promise<boolean>;

  /** Writes a batch of records at once (one transaction where the store has them). */
  recordInvocations(recs: readonly InvocationRecord[]): Promise<void>;
  getInvocation(id: string): Promise<InvocationRecord | null>;
  listInvocations(q: InvocationQuery): Promise<InvocationRecord[]>;
  /** Keeps the newest `keep` records; returns how many were removed. */
  pruneInvocations(keep: number): Promise<number>;

  appendLogs(lines: Omit<LogLine, 'seq'>[]): Promise<void>;
  readLogs(q: LogQuery): Promise<LogLine[]>;
  /**
   * Keeps the newest `keepPerFunction` lines of each function and, given `now` (epoch ms), removes the lines
   * of a function with a log retention that are older than it; returns how many went.
   */
  pruneLogs(keepPerFunction: number, now?: number): Promise<number>;

  enqueueEvent(ev: QueuedEvent): Promise<void>;
  /**
   * Takes up to `limit` events due at `now`, leasing them until now + leaseMs so no one else takes them (no
   * other process either, on a shared store). `owner` names the node holding the lease, for releaseLeases.
   */
  leaseEvents(now: number, leaseMs: number, limit: number, owner?: string | null): Promise<QueuedEvent[]>;
  /**
   * Ends an event, atomically with what its delivery produced: its invocation record, an event for a
   * destination, a dead letter. After a crash either all of it happened or none (and it runs again).
   */
  completeEvent(id: string, outcome?: { record?: InvocationRecord | null; enqueue?: QueuedEvent | null; deadLetter?: DeadLetter | null }): Promise<void>;
  /**
   * Puts a leased event back, due at nextAttemptAt, with the failed attempt's record; attempts + 1 unless
   * countAttempt is false (a throttled delivery did not run).
   */
  retryEvent(id: string, nextAttemptAt: number, record?: InvocationRecord | null, countAttempt?: boolean): Promise<void>;
  /**
   * Makes leased events due again at once; called when a node starts, so events a crashed process had
   * leased are redelivered (at-least-once). Without an owner every lease goes (a store one node owns); with
   * one, only that owner's (a shared store: other nodes' leases are theirs, and expire on their own).
   * Returns how many.
   */
  releaseLeases(owner?: string): Promise<number>;
  /**
   * Extends the leases of these events (deliveries still running) to `until`, those `owner` still holds;
   * returns how many. Leases are short and renewed, so a node that dies leaves events others take soon.
   */
  renewLeases(ids: readonly string[], until: number, owner?: string | null): Promise<number>;
  countEvents(): Promise<number>;
  /** When the oldest queued event was accepted (epoch ms), null when none waits: the queue's age for metrics. */
  oldestEventAt(): Promise<number | null>;

  /** Inserts or replaces a version's snapshot record. */
  putSnapshot(rec: SnapshotRecord): Promise<void>;
  getSnapshot(functionName: string, version: string): Promise<SnapshotRecord | null>;
  listSnapshots(functionName?: string): Promise<SnapshotRecord[]>;
  deleteSnapshot(functionName: string, version: string): Promise<void>;
  /** True if any snapshot record names this blob. */
  isSnapshotInUse(sha256: string): Promise<boolean>;

  /** Records the files a package's init read under one handler; the first record stands (false: one was there). */
  putInitSet(set: InitSet): Promise<boolean>;
  getInitSet(codeSha256: string, handler: string): Promise<InitSet | null>;
  /** Deletes a package's init sets (it is gone); returns their bundles no other set names (the caller deletes those). */
  deleteInitSets(codeSha256: string): Promise<string[]>;

  putProvisioned(cfg: ProvisionedConfig): Promise<void>;
  listProvisioned(functionName?: string): Promise<ProvisionedConfig[]>;
  /** Returns whether there was one. */
  deleteProvisioned(functionName: string, qualifier: string): Promise<boolean>;

  putPolicy(p: FunctionPolicy): Promise<void>;
  listPolicies(): Promise<FunctionPolicy[]>;
  /** Returns whether there was one. */
  deletePolicy(functionName: string): Promise<boolean>;

  putSchedule(s: Schedule): Promise<void>;
  /**
   * Stores a firing's update only if the schedule is still due at expectedNextAt: of several control planes
   * firing one schedule, one gets true and fires it. False also when the schedule is gone.
   */
  claimSchedule(s: Schedule, expectedNextAt: number): Promise<boolean>;
  listSchedules(functionName?: string): Promise<Schedule[]>;
  /** Returns whether there was one. */
  deleteSchedule(id: string): Promise<boolean>;

  putEventInvokeConfig(cfg: EventInvokeConfig): Promise<void>;
  getEventInvokeConfig(functionName: string, qualifier: string): Promise<EventInvokeConfig | null>;
  listEventInvokeConfigs(functionName: string): Promise<EventInvokeConfig[]>;
  /** Returns whether there was one. */
  deleteEventInvokeConfig(functionName: string, qualifier: string): Promise<boolean>;

  /** Newest first. */
  listDeadLetters(functionName: string, limit: number): Promise<DeadLetter[]>;
  getDeadLetter(id: string): Promise<DeadLetter | null>;
  deleteDeadLetter(id: string): Promise<boolean>;

  /** Throws if the id exists. */
  /** Fails (THAW_E_NETWORK_EXISTS) when the name is taken. */
  createNetwork(n: NetworkRecord): Promise<void>;
  getNetwork(name: string): Promise<NetworkRecord | null>;
  listNetworks(): Promise<NetworkRecord[]>;
  /** Returns whether it existed. */
  deleteNetwork(name: string): Promise<boolean>;

  /** Fails (THAW_E_SECURITY_GROUP_EXISTS) when the name is taken. */
  createSecurityGroup(g: SecurityGroupRecord): Promise<void>;
  getSecurityGroup(name: string): Promise<SecurityGroupRecord | null>;
  listSecurityGroups(): Promise<SecurityGroupRecord[]>;
  deleteSecurityGroup(name: string): Promise<boolean>;

  createKey(key: AccessKey): Promise<void>;
  getKey(id: string): Promise<AccessKey | null>;
  listKeys(): Promise<AccessKey[]>;
  /** Returns whether an unrevoked key of that id was revoked. */
  revokeKey(id: string, at: number): Promise<boolean>;
  /** Whether any unrevoked key exists (then every API call must be signed). */
  hasActiveKeys(): Promise<boolean>;

  /** Throws THAW_E_FUNCTION_URL_EXISTS when create is true and the qualifier has one, THAW_E_FUNCTION_URL_NOT_FOUND when false and it has none. */
  putFunctionUrl(u: FunctionUrlRecord, create: boolean): Promise<void>;
  getFunctionUrl(functionName: string, qualifier: string): Promise<FunctionUrlRecord | null>;
  /** The URL a request path names (served at /lambda-url/{urlId}/). */
  getFunctionUrlById(urlId: string): Promise<FunctionUrlRecord | null>;
  listFunctionUrls(functionName: string): Promise<FunctionUrlRecord[]>;
  /** Returns whether there was one. */
  deleteFunctionUrl(functionName: string, qualifier: string): Promise<boolean>;

  getResourcePolicy(functionName: string, qualifier: string): Promise<ResourcePolicy | null>;
  /**
   * Replaces the policy of a function (or version, or alias), removing it when it has no statements, only if
   * its revision is still expectedRevisionId (null: it has none yet); else THAW_E_REVISION_MISMATCH.
   */
  putResourcePolicy(p: ResourcePolicy, expectedRevisionId: string | null): Promise<void>;

  recordCall(caller: string, callee: string, at: number): Promise<void>;
  listCalls(caller?: string): Promise<CallEdge[]>;

  close(): Promise<void>;
}
