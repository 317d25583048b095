// The one error registry: every failure Thaw reports has a stable code, a kind, an HTTP status and a fix.
// Imports nothing; every component may import it.

export type ErrorKind = 'user' | 'function' | 'platform';

export interface ErrorSpec {
  readonly kind: ErrorKind;
  readonly status: number;
  /** The AWS Lambda error type this maps to, so the AWS SDK raises the exception users expect. */
  readonly lambdaType: string;
  readonly retryable: boolean;
  /** One sentence telling the user how to fix it. */
  readonly fix: string;
}

const spec = (kind: ErrorKind, status: number, lambdaType: string, fix: string, retryable = false): ErrorSpec =>
  ({ kind, status, lambdaType, retryable, fix });

export const errorRegistry = {
  // Requests and parameters
  THAW_E_REQUEST_JSON: spec('user', 400, 'InvalidRequestContentException', 'Send a body that is valid JSON (check quoting and trailing commas).'),
  THAW_E_REQUEST_INVALID: spec('user', 400, 'InvalidParameterValueException', 'Correct the named field; `thaw --help` and the Lambda API reference list the accepted values.'),
  THAW_E_REQUEST_TOO_LARGE: spec('user', 413, 'RequestTooLargeException', 'Keep the request body under the limit; upload large packages as a .zip of at most the package limit.'),
  THAW_E_HEADER_INVALID: spec('user', 400, 'InvalidParameterValueException', 'Correct the named header to one of its documented values.'),
  // Not ResourceNotFoundException: SDKs read that as "the function does not exist".
  THAW_E_ROUTE_NOT_FOUND: spec('user', 404, 'UnknownOperationException', 'Check the URL path; the API is documented in the README, with what is supported and what is refused.'),
  THAW_E_PROVISIONED_NOT_FOUND: spec('user', 404, 'ProvisionedConcurrencyConfigNotFoundException', 'Set reserved instances for that version or alias first (PutProvisionedConcurrencyConfig).'),
  THAW_E_PACKAGE_NOT_FOUND: spec('user', 404, 'ResourceNotFoundException', 'Name a package by the CodeSha256 of a deployed version.'),
  THAW_E_METHOD_NOT_ALLOWED: spec('user', 405, 'InvalidParameterValueException', 'Use one of the methods listed in the Allow header.'),
  // A Lambda operation or field Thaw has a route for but cannot carry out: said so, never dropped silently.
  THAW_E_OPERATION_UNSUPPORTED: spec('user', 400, 'InvalidParameterValueException', 'Thaw does not offer this Lambda feature; the message says what works instead, and the README\'s API table lists every operation.'),
  THAW_E_FIELD_UNSUPPORTED: spec('user', 400, 'InvalidParameterValueException', 'Leave the named field out (or at its default); the message says why Thaw cannot honour it and what works instead.'),
  THAW_E_FIELD_UNKNOWN: spec('user', 400, 'InvalidParameterValueException', 'Check the spelling of the named field against the Lambda API reference; Thaw refuses fields it does not know rather than ignore them.'),
  THAW_E_TAGS_INVALID: spec('user', 400, 'InvalidParameterValueException', 'Tag keys are 1-128 characters, values 0-256, of letters, digits, spaces and _ . : / = + - @; keys may not start with aws:; a function has at most 50 tags.'),
  THAW_E_RESOURCE_NOT_FOUND: spec('user', 404, 'ResourceNotFoundException', 'Thaw has none of these resources (see the README\'s API table); list them with the matching List operation.'),
  THAW_E_CODE_SIGNING_CONFIG_NOT_FOUND: spec('user', 404, 'CodeSigningConfigNotFoundException', 'Thaw has no code signing configs: leave CodeSigningConfigArn out.'),

  // Names and configuration
  THAW_E_NAME_INVALID: spec('user', 400, 'InvalidParameterValueException', 'Use 1-64 characters of letters, digits, hyphens and underscores, starting with a letter.'),
  THAW_E_NAME_RESERVED: spec('user', 400, 'InvalidParameterValueException', 'Pick another name; this one is used by Thaw\'s own URL paths.'),
  THAW_E_RUNTIME_UNKNOWN: spec('user', 400, 'InvalidParameterValueException', 'Use a supported runtime: nodejs20.x, nodejs22.x or nodejs24.x.'),
  THAW_E_CONFIG_INVALID: spec('user', 400, 'InvalidParameterValueException', 'Correct the named setting; memory is 128-10240 MB, EphemeralStorage.Size 512-10240 MB, timeout 1-900 s, env keys match [A-Za-z_][A-Za-z0-9_]*.'),
  THAW_E_ENV_RESERVED: spec('user', 400, 'InvalidParameterValueException', 'Rename the variable; names starting with AWS_, LAMBDA_ or THAW_ and NODE_OPTIONS are set by the runtime.'),
  THAW_E_INVALID_POLICY: spec('user', 400, 'InvalidParameterValueException', 'Give a policy as fixed:<ttl>, hybrid:<range>, gdsf[:<budget>] or thaw[:<range>[:<budget>]], e.g. fixed:10m or hybrid:4h.'),
  THAW_E_SCHEDULE_INVALID: spec('user', 400, 'InvalidParameterValueException', 'Give the schedule as rate(<n> minutes|hours|days) or a cron expression of 5 fields (minute hour day-of-month month day-of-week), e.g. cron(*/5 * * * *).'),
  THAW_E_SCHEDULE_NOT_FOUND: spec('user', 404, 'ResourceNotFoundException', 'List the schedules with `thaw schedule ls <function>` and use one of their ids.'),
  THAW_E_TRACE_INVALID: spec('user', 400, 'InvalidParameterValueException', 'Point --trace at a directory with Azure Functions 2019 files (<n>_inv.csv, <n>_run.csv, <n>_mem.csv) or a single invocations CSV.'),
  THAW_E_SIM_TOO_LARGE: spec('user', 413, 'RequestTooLargeException', 'Upload a smaller trace to the dashboard\'s simulator (fewer functions, minutes or invocations), or run it with `thaw sim --trace DIR`, which has no such bound.'),
  THAW_E_SIM_TIMEOUT: spec('user', 422, 'InvalidParameterValueException', 'The simulation ran past its time bound: upload a smaller trace, or run it with `thaw sim --trace DIR --sweep`, which has none.'),
  THAW_E_SIM_BUSY: spec('platform', 429, 'TooManyRequestsException', 'Another simulation is running on this node; try again when it has finished.', true),
  THAW_E_EGRESS_INVALID: spec('user', 400, 'InvalidParameterValueException', 'Give the egress policy as none, public, or a list of HOST[:PORTS] / CIDR[:PORTS] rules, e.g. api.example.com:443,10.0.0.0/24:5432 (ports N, N-M or N|M).'),
  THAW_E_EGRESS_DENIED: spec('function', 403, 'AccessDeniedException', 'The function\'s egress policy does not allow this destination; change it with `thaw deploy --egress` (or ThawEgress in the API).'),
  THAW_E_EGRESS_UNREACHABLE: spec('function', 502, 'ServiceException', 'The egress proxy could not reach the destination (it does not resolve or refused the connection); check the address.', true),
  THAW_E_VPC_INVALID: spec('user', 400, 'InvalidParameterValueException', 'Give VpcConfig.SubnetIds as names of Thaw networks (`thaw network list`) and SecurityGroupIds as names of Thaw security groups (`thaw network sg list`).'),
  THAW_E_SECURITY_GROUP_INVALID: spec('user', 400, 'InvalidParameterValueException', 'Name the group with 1-32 lowercase letters, digits and hyphens and give 1-64 rules CIDR[:PORTS][/tcp|/udp], e.g. 10.77.0.5/32:5432/tcp (ports N, N-M or N|M).'),
  THAW_E_SECURITY_GROUP_NOT_FOUND: spec('user', 404, 'ResourceNotFoundException', 'Create the group first with `thaw network sg create NAME --allow RULE`; `thaw network sg list` shows them.'),
  THAW_E_SECURITY_GROUP_EXISTS: spec('user', 409, 'ResourceConflictException', 'Pick another name (groups are immutable: create a new one and point the function at it).'),
  THAW_E_SECURITY_GROUP_IN_USE: spec('user', 409, 'ResourceConflictException', 'Remove the group from the VpcConfig of the functions that use it first.'),
  THAW_E_NETWORK_INVALID: spec('user', 400, 'InvalidParameterValueException', 'Name the network with 1-32 letters, digits and hyphens and give its subnet as an IPv4 CIDR with a prefix of /16 to /29, e.g. 10.77.0.0/24.'),
  THAW_E_NETWORK_NOT_FOUND: spec('user', 404, 'ResourceNotFoundException', 'Create the network first with `thaw network create NAME --subnet CIDR`; `thaw network list` shows them.'),
  THAW_E_NETWORK_EXISTS: spec('user', 409, 'ResourceConflictException', 'Pick another name or subnet, or delete the existing network first (`thaw network delete NAME`).'),
  THAW_E_NETWORK_IN_USE: spec('user', 409, 'ResourceConflictException', 'Remove the network from the VpcConfig of the functions that use it first.'),
  THAW_E_NETWORK_UNAVAILABLE: spec('user', 400, 'InvalidParameterValueException', 'Private networks need the namespaces sandbox (root, bubblewrap) and iproute2, security groups also nftables: apt-get install iproute2 bubblewrap nftables and run thaw up as root.'),
  THAW_E_HANDLER_INVALID: spec('user', 400, 'InvalidParameterValueException', 'Give the handler as FILE.EXPORT, e.g. index.handler for export `handler` of index.js.'),

  // Packages
  THAW_E_PACKAGE_MISSING: spec('user', 400, 'InvalidParameterValueException', 'Provide the code: a .zip or .tgz file, or a directory for `thaw deploy`.'),
  THAW_E_PACKAGE_FORMAT: spec('user', 400, 'InvalidParameterValueException', 'Upload a valid .zip (or gzip-compressed tar) archive; re-create it with `zip -r` or `tar czf`.'),
  THAW_E_PACKAGE_TOO_LARGE: spec('user', 413, 'RequestEntityTooLargeException', 'Shrink the package (drop dev dependencies, use layers) or raise the limit with --max-package-mb.'),
  THAW_E_CODE_S3_UNREADABLE: spec('user', 400, 'InvalidParameterValueException', 'Name an object that exists (S3Bucket, S3Key, S3ObjectVersion) at the S3 endpoint Thaw uses (AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else AWS), readable with Thaw\'s credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY); or upload the package itself as ZipFile.'),
  THAW_E_CODE_S3_UNREACHABLE: spec('platform', 502, 'ServiceException', 'The S3 endpoint Thaw reads Code.S3Bucket/S3Key from did not answer; check AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL) on the Thaw server and that the endpoint is up, then retry.', true),
  THAW_E_PACKAGE_UNPACKED_TOO_LARGE: spec('user', 400, 'CodeStorageExceededException', 'Keep the unpacked package under the limit or raise it with --max-unpacked-mb.'),
  THAW_E_PACKAGE_TOO_MANY_FILES: spec('user', 400, 'InvalidParameterValueException', 'Reduce the number of files in the package, e.g. by bundling.'),
  THAW_E_PACKAGE_BOMB: spec('user', 400, 'InvalidParameterValueException', 'The archive expands far more than real code does; re-create it from the real files.'),
  THAW_E_PACKAGE_PATH_UNSAFE: spec('user', 400, 'InvalidParameterValueException', 'Archive entries must be relative paths inside the package: no "..", no absolute paths, no drive letters.'),
  THAW_E_PACKAGE_LINK_UNSAFE: spec('user', 400, 'InvalidParameterValueException', 'Links in the package must point to files inside it; replace the link with the file itself.'),
  THAW_E_PACKAGE_ENTRY_UNSUPPORTED: spec('user', 400, 'InvalidParameterValueException', 'Only regular files, directories and symbolic links can be packaged; remove devices, FIFOs and encrypted entries.'),
  THAW_E_HANDLER_FILE_MISSING: spec('user', 400, 'InvalidParameterValueException', 'Put the handler file at the package root (or fix the path in --handler); .js, .mjs, .cjs and .ts are looked up.'),
  THAW_E_HANDLER_EXPORT_MISSING: spec('user', 400, 'InvalidParameterValueException', 'Export the named function from the handler file, e.g. `export const handler = async (event) => ...`.'),
  THAW_E_TRIGGER_CLOSED: spec('user', 403, 'AccessDeniedException', 'Call the function through its function URL (GetFunctionUrlConfig gives it), or delete the URL config to serve the HTTP trigger again.'),
  THAW_E_CALLBACK_HANDLER: spec('user', 400, 'InvalidParameterValueException', 'Make the handler an async function of (event, context) that returns its result, or deploy it with runtime nodejs22.x or nodejs20.x, which call handlers back.'),
  THAW_E_TYPESCRIPT_INVALID: spec('user', 400, 'InvalidParameterValueException', 'Fix the TypeScript at the file:line:column named (Thaw compiles .ts, .mts and .cts files at deploy with esbuild; types are not checked), then deploy again.'),

  // Access
  THAW_E_AUTH_REQUIRED: spec('user', 403, 'MissingAuthenticationTokenException', 'Sign the request with AWS Signature Version 4 using a Thaw access key: the AWS SDK and CLI do it given AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; `thaw keys create` makes a key.'),
  THAW_E_AUTH_SIGNATURE: spec('user', 403, 'InvalidSignatureException', 'Sign with the secret that belongs to the access key id, with AWS Signature Version 4, and keep the client clock within 15 minutes of the server.'),
  THAW_E_AUTH_UNKNOWN_KEY: spec('user', 403, 'UnrecognizedClientException', 'Use an access key that exists and is not revoked; `thaw keys list` shows them.'),
  THAW_E_AUTH_DENIED: spec('user', 403, 'AccessDeniedException', 'Use a key whose role (admin, developer, invoker) and functions allow this call, or ask an admin for one.'),
  THAW_E_AUTH_LOOPBACK_ONLY: spec('user', 403, 'AccessDeniedException', 'Without access keys Thaw serves only clients on this machine; create a key (`thaw keys create --data DIR --role admin`) and sign requests with it.'),
  THAW_E_HOST_REFUSED: spec('user', 403, 'AccessDeniedException', 'Address Thaw by the host it listens on (e.g. 127.0.0.1:PORT or localhost:PORT); other Host headers are refused to stop DNS rebinding until access keys are in use.'),
  THAW_E_ORIGIN_REFUSED: spec('user', 403, 'AccessDeniedException', 'Thaw\'s API does not serve other web origins; call it from a tool or server, or sign the request with an access key.'),
  THAW_E_EVENT_CONFIG_NOT_FOUND: spec('user', 404, 'ResourceNotFoundException', 'Create the config first with PutFunctionEventInvokeConfig (an Update needs one to exist).'),
  THAW_E_DEAD_LETTER_NOT_FOUND: spec('user', 404, 'ResourceNotFoundException', 'List the dead letters with GET /thaw/v1/functions/{name}/dead-letters and use one of their ids.'),
  THAW_E_KEY_NOT_FOUND: spec('user', 404, 'ResourceNotFoundException', 'List the keys with `thaw keys list` and give an active key id.'),
  THAW_E_METRICS_TOKEN_INVALID: spec('user', 401, 'AccessDeniedException', 'Send the token thaw up was started with (--metrics-token) as `Authorization: Bearer TOKEN` (Prometheus: authorization.credentials in the scrape config), or sign the request with a key that may read.'),

  // Resources
  THAW_E_FUNCTION_NOT_FOUND: spec('user', 404, 'ResourceNotFoundException', 'Check the name with `thaw list`, or deploy it with `thaw deploy`.'),
  THAW_E_FUNCTION_EXISTS: spec('user', 409, 'ResourceConflictException', 'Pick another name, or update the existing function (UpdateFunctionCode / `thaw deploy`).'),
  THAW_E_VERSION_NOT_FOUND: spec('user', 404, 'ResourceNotFoundException', 'List the published versions with `thaw list` and use one of them.'),
  THAW_E_ALIAS_NOT_FOUND: spec('user', 404, 'ResourceNotFoundException', 'Create the alias first with `thaw alias set`.'),
  THAW_E_ALIAS_EXISTS: spec('user', 409, 'ResourceConflictException', 'Update the alias instead (UpdateAlias / `thaw alias set`).'),
  THAW_E_ALIAS_ROUTING_INVALID: spec('user', 400, 'InvalidParameterValueException', 'Route to one additional published version with a weight between 0 and 1, different from the primary version.'),
  THAW_E_QUALIFIER_INVALID: spec('user', 400, 'InvalidParameterValueException', 'Use $LATEST, a version number or an alias name as the qualifier.'),
  THAW_E_REVISION_MISMATCH: spec('user', 412, 'PreconditionFailedException', 'Fetch the function again and retry with its current RevisionId.'),
  THAW_E_LAYER_NOT_FOUND: spec('user', 404, 'ResourceNotFoundException', 'List the layers with ListLayers / ListLayerVersions (`aws lambda list-layers`) and name a layer version that exists.'),
  THAW_E_LAYER_INVALID: spec('user', 400, 'InvalidParameterValueException', 'Give Layers as at most 5 layer version ARNs (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION) of this Thaw, each once; PublishLayerVersion takes LayerName (1-140 letters, digits, - and _) and Content.ZipFile.'),
  THAW_E_LAYER_PERMISSION_EXISTS: spec('user', 409, 'ResourceConflictException', 'Use another StatementId, or remove the statement first (RemoveLayerVersionPermission).'),
  THAW_E_LAYER_POLICY_NOT_FOUND: spec('user', 404, 'ResourceNotFoundException', 'Add a statement first (AddLayerVersionPermission), or name one that GetLayerVersionPolicy lists.'),
  THAW_E_INVOCATION_NOT_FOUND: spec('user', 404, 'ResourceNotFoundException', 'Use an invocation id from the X-Thaw-Invocation-Id header or `thaw logs`.'),
  THAW_E_FUNCTION_URL_NOT_FOUND: spec('user', 404, 'ResourceNotFoundException', 'Create the URL first with CreateFunctionUrlConfig (for $LATEST, or an alias with Qualifier); ListFunctionUrlConfigs shows a function\'s URLs.'),
  THAW_E_FUNCTION_URL_EXISTS: spec('user', 409, 'ResourceConflictException', 'Update the URL instead (UpdateFunctionUrlConfig), or delete it first.'),
  THAW_E_FUNCTION_URL_FORBIDDEN: spec('user', 403, 'AccessDeniedException', 'For an AuthType NONE URL, add the public permission: AddPermission with Action lambda:InvokeFunctionUrl, Principal "*" and FunctionUrlAuthType NONE; for AWS_IAM, sign with a key whose role or the function\'s policy allows it.'),
  THAW_E_POLICY_TOO_LARGE: spec('user', 400, 'PolicyLengthExceededException', 'Remove statements you no longer need (RemovePermission), or grant several callers with one statement (e.g. a SourceArn pattern); a policy holds at most 20 KB, as on Lambda.'),
  THAW_E_PERMISSION_EXISTS: spec('user', 409, 'ResourceConflictException', 'Use another StatementId, or remove the existing statement first (RemovePermission).'),
  THAW_E_PERMISSION_NOT_FOUND: spec('user', 404, 'ResourceNotFoundException', 'GetPolicy shows the statements of the function (or of the version or alias given as Qualifier).'),

  // Invocation
  THAW_E_PAYLOAD_INVALID: spec('user', 400, 'InvalidRequestContentException', 'Send the event as a JSON document (an object, array, string, number, boolean or null).'),
  THAW_E_PAYLOAD_TOO_LARGE: spec('user', 413, 'RequestTooLargeException', 'Keep synchronous payloads under 6 MB and asynchronous ones under 256 KB.'),
  THAW_E_THROTTLED: spec('user', 429, 'TooManyRequestsException', 'Retry with backoff, or raise the function\'s concurrency limit (PutFunctionConcurrency).', true),
  THAW_E_INVOKE_DEPTH: spec('function', 508, 'RecursiveInvocationException', 'A function called itself through context.invoke too deeply; break the recursion.'),
  THAW_E_FUNCTION_TIMEOUT: spec('function', 200, 'Sandbox.Timedout', 'Make the handler finish sooner or raise the function timeout.'),
  THAW_E_FUNCTION_CRASHED: spec('function', 200, 'Runtime.ExitError', 'The runtime exited during the invocation; check `thaw logs` for the cause (process.exit, uncaught error, native crash).'),
  THAW_E_FUNCTION_OOM: spec('function', 200, 'Runtime.OutOfMemory', 'The handler ran out of memory; raise the function\'s memory or use less.'),
  THAW_E_FUNCTION_INIT_FAILED: spec('function', 200, 'Runtime.InitError', 'The handler module failed while loading; check `thaw logs` for the error thrown at init.'),
  THAW_E_RESPONSE_TOO_LARGE: spec('function', 200, 'Function.ResponseSizeTooLarge', 'Return less than 6 MB; put large results in storage and return a reference.'),
  THAW_E_RESPONSE_INVALID: spec('function', 200, 'Runtime.MarshalError', 'Return a value that can be serialized as JSON.'),
  THAW_E_DATA_DIR_IN_USE: spec('user', 409, 'ResourceConflictException', 'Stop the Thaw that serves this data dir first, or start this one with its own --data.'),
  // Cluster (a control plane with `thaw agent`s)
  THAW_E_AGENT_LOST: spec('platform', 502, 'ServiceException', 'The agent running the invocation went away after the handler started, so it may have run; retry if the function is safe to run twice (Event invocations are redelivered).', true),
  THAW_E_CLUSTER_NO_AGENTS: spec('platform', 503, 'ServiceException', 'No agent is joined to this control plane; start one with `thaw agent --control URL --data DIR` and a key made with `thaw keys create --role agent`.', true),
  THAW_E_CLUSTER_MESSAGE_INVALID: spec('user', 400, 'InvalidParameterValueException', 'A cluster message did not have the expected shape: run the same Thaw version on the control plane and its agents.'),
  THAW_E_CLUSTER_NAME_TAKEN: spec('user', 409, 'ResourceConflictException', 'A live agent already has this name at another address: give each agent its own --name. An agent restarted at a new address is taken once the old one has been silent for 3 heartbeats.'),
  THAW_E_CLUSTER_TOKEN: spec('user', 401, 'AccessDeniedException', 'Only the control plane (and peers it told about) may call an agent; the agent takes the token its control plane gave at join.'),
  THAW_E_SHUTTING_DOWN: spec('platform', 503, 'ServiceException', 'Thaw is shutting down; retry against a running instance.', true),
  THAW_E_SANDBOX_UNAVAILABLE: spec('user', 400, 'InvalidParameterValueException', 'Install bubblewrap (apt-get install bubblewrap) and run thaw up as root, or choose --sandbox process (instances are then not isolated).'),
  THAW_E_ZRAM_UNAVAILABLE: spec('user', 400, 'InvalidParameterValueException', 'Run thaw up as root on a host with a free zram device (modprobe zram; zramctl shows them), or leave out --zram and give the host swap of its own; without swap the paged tier is off.'),
  THAW_E_SANDBOX_START_FAILED: spec('platform', 502, 'ServiceException', 'The instance could not be started; check the server log and retry.', true),
  THAW_E_STORE_UNAVAILABLE: spec('platform', 503, 'ServiceException', 'Check that the PostgreSQL server named in the store URL (--store / THAW_STORE) is running and reachable from this host, and that the URL\'s user, password and database are right (psql URL tries them).', true),
  THAW_E_STORE_INCOMPATIBLE: spec('user', 400, 'InvalidParameterValueException', 'Point the store URL at an empty PostgreSQL database (CREATE DATABASE thaw) or one Thaw created; a schema newer than this Thaw needs a Thaw upgrade.'),
  THAW_E_STORE_BUSY: spec('platform', 503, 'ServiceException', 'The store stayed locked by another writer longer than its busy timeout (5 s); retry, and check what else holds the database (a backup, a second tool).', true),
  THAW_E_ORIGIN_UNAVAILABLE: spec('platform', 503, 'ServiceException', 'The origin (thaw up --origin s3://BUCKET) could not be reached or written: check that the bucket exists, the endpoint (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL) is up and reachable from this node, and the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) may read and write it; then retry.', true),
  THAW_E_STORAGE_FULL: spec('platform', 507, 'ServiceException', 'The data or cache directory is full: free space there (or raise its quota), then retry; nothing of the refused request was kept.', true),
  THAW_E_INTERNAL: spec('platform', 500, 'ServiceException', 'This is a bug in Thaw; the server log has the details.', true),
  THAW_E_ABORTED: spec('user', 499, 'ServiceException', 'The client went away or the request was cancelled before it finished.', true),

  // CLI
  THAW_E_CLI_USAGE: spec('user', 2, 'InvalidParameterValueException', 'Run `thaw help` to see the commands and their options.'),
  THAW_E_CLI_UNREACHABLE: spec('platform', 503, 'ServiceException', 'Start Thaw with `npm start` (or `thaw up`), or point --endpoint / THAW_ENDPOINT at it.', true),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorRegistry;

export class ThawError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly status: number;
  readonly lambdaType: string;
  readonly retryable: boolean;
  readonly fix: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: { details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const s: ErrorSpec = errorRegistry[code];
    this.name = 'ThawError';
    this.code = code;
    this.kind = s.kind;
    this.status = s.status;
    this.lambdaType = s.lambdaType;
    this.retryable = s.retryable;
    this.fix = s.fix;
    this.details = options.details;
  }

  toJSON() {
    return { code: this.code, kind: this.kind, message: this.message, fix: this.fix, retryable: this.retryable, ...(this.details ? { details: this.details } : {}) };
  }
}

export const isThawError = (e: unknown): e is ThawError => e instanceof ThawError;

/** Wraps anything thrown into a ThawError, keeping ThawErrors as they are. */
export function asThawError(e: unknown): ThawError {
  if (e instanceof ThawError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const errno = (e as { code?: unknown })?.code;
  // A full disk is the operator's to fix, not a bug: say so (the message keeps no path; see sendError).
  if (errno === 'ENOSPC' || errno === 'EDQUOT' || errno === 'SQLITE_FULL' || /database or disk is full/.test(message)) {
    return new ThawError('THAW_E_STORAGE_FULL', 'no space left to store this', { cause: e });
  }
  if (errno === 'SQLITE_BUSY' || /database is locked/.test(message)) return new ThawError('THAW_E_STORE_BUSY', 'the store is locked by another writer', { cause: e });
  return new ThawError('THAW_E_INTERNAL', message, { cause: e });
}
