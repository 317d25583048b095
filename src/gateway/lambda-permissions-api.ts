// Resource-based policies of functions (AddPermission, GetPolicy, RemovePermission, 2015-03-31) and their
// evaluation: which statements let a Thaw access key, or anyone, invoke a function or its URL. A policy
// belongs to the unqualified function ($LATEST) or to one version or alias, as on Lambda. A Thaw key is the
// IAM user arn:aws:iam::000000000000:user/<key id>. Imports src/core and the gateway's plumbing.
import { randomUUID } from 'node:crypto';
import { ACCOUNT_ID, functionArn } from '../core/arn.ts';
import { ThawError } from '../core/errors.ts';
import { LATEST, type AccessKey, type PermissionStatement, type ResourcePolicy } from '../core/types.ts';
import type { Store } from '../store/index.ts';
import type { PolicyGrant } from './auth.ts';
import { checkFields, functionTarget, optBoolean, optString, readJson, sendJson, type RequestContext, type Router } from './http.ts';
import type { Platform } from './platform.ts';

const BODY_BYTES = 64 * 1024;
/** Lambda's limit on a function's resource-based policy, as its JSON document. */
const MAX_POLICY_BYTES = 20 * 1024;

/** The actions a statement may grant on Thaw: the ones Thaw checks (anything else would be stored and never honored). */
export const GRANTABLE_ACTIONS = ['lambda:InvokeFunction', 'lambda:InvokeFunctionUrl', 'lambda:*', '*'] as const;
type CheckedAction = 'lambda:InvokeFunction' | 'lambda:InvokeFunctionUrl';

/** AddPermission's body fields and the condition each becomes (operator, key). */
const CONDITIONS = {
  SourceArn: ['ArnLike', 'AWS:SourceArn'],
  SourceAccount: ['StringEquals', 'AWS:SourceAccount'],
  PrincipalOrgID: ['StringEquals', 'aws:PrincipalOrgID'],
  EventSourceToken: ['StringEquals', 'lambda:EventSourceToken'],
  FunctionUrlAuthType: ['StringEquals', 'lambda:FunctionUrlAuthType'],
  InvokedViaFunctionUrl: ['Bool', 'lambda:InvokedViaFunctionUrl'],
} as const;

const FIELDS = ['StatementId', 'Action', 'Principal', 'RevisionId', ...Object.keys(CONDITIONS)];

/** The IAM principal a Thaw access key is. */
export const keyPrincipal = (key: AccessKey) => `arn:aws:iam::${ACCOUNT_ID}:user/${key.id}`;

/** The policy a call with this qualifier is checked against: unqualified and $LATEST are the function's own. */
export const policyQualifier = (qualifier: string | null) => qualifier ?? LATEST;

const bad = (message: string) => new ThawError('THAW_E_REQUEST_INVALID', message);

/** Principal as AddPermission takes it → the form a policy holds. */
export function principalOf(p: string): PermissionStatement['Principal'] {
  if (p === '*') return '*';
  if (/^\d{12}$/.test(p)) return { AWS: `arn:aws:iam::${p}:root` };
  if (/^AKTH[A-Z2-7]{16}$/.test(p)) return { AWS: `arn:aws:iam::${ACCOUNT_ID}:user/${p}` };
  if (/^arn:aws:iam::\d{12}:(root|user\/[\w+=,.@/-]+|role\/[\w+=,.@/-]+)$/.test(p)) return { AWS: p };
  if (/^[a-z0-9-]+(\.[a-z0-9-]+)*\.(amazonaws\.com|amazon\.com)$/.test(p)) return { Service: p };
  throw bad(`Principal ${JSON.stringify(p)} is not a principal: give "*", a Thaw access key id (AKTH...), arn:aws:iam::${ACCOUNT_ID}:user/<key id>, an account id, an IAM ARN or a service (e.g. s3.amazonaws.com)`);
}

/** One AddPermission request → its statement; throws naming the field that is wrong. */
export function statementFor(body: Record<string, unknown>, resource: string): PermissionStatement {
  checkFields('AddPermission', body, FIELDS);
  const sid = optString(body, 'StatementId');
  if (!sid || !/^[A-Za-z0-9_.-]{1,100}$/.test(sid)) throw bad('StatementId is required: 1-100 letters, digits, hyphens, underscores and dots');
  const action = optString(body, 'Action');
  if (!action || !(GRANTABLE_ACTIONS as readonly string[]).includes(action)) throw bad(`Action must be one of ${GRANTABLE_ACTIONS.join(', ')} (the ones Thaw enforces), got ${JSON.stringify(action ?? null)}`);
  const principal = optString(body, 'Principal');
  if (!principal) throw bad('Principal is required');
  const condition: Record<string, Record<string, string>> = {};
  const put = (field: keyof typeof CONDITIONS, value: string) => {
    const [op, key] = CONDITIONS[field];
    (condition[op] ??= {})[key] = value;
  };
  const check = (field: keyof typeof CONDITIONS, pattern: RegExp, shape: string) => {
    const v = optString(body, field);
    if (v === undefined) return;
    if (!pattern.test(v)) throw bad(`${field} must be ${shape}, got ${JSON.stringify(v)}`);
    put(field, v);
  };
  check('SourceArn', /^arn:[^:\s]+:[^:\s]*:[^:\s]*:[^:\s]*:\S+$/, 'an ARN');
  check('SourceAccount', /^\d{12}$/, 'a 12-digit account id');
  check('PrincipalOrgID', /^o-[a-z0-9]{10,32}$/, 'an organization id (o-...)');
  check('EventSourceToken', /^[A-Za-z0-9._-]{1,256}$/, '1-256 letters, digits, dots, hyphens and underscores');
  check('FunctionUrlAuthType', /^(NONE|AWS_IAM)$/, 'NONE or AWS_IAM');
  const viaUrl = optBoolean(body, 'InvokedViaFunctionUrl');
  if (viaUrl !== undefined) put('InvokedViaFunctionUrl', String(viaUrl));
  return {
    Sid: sid, Effect: 'Allow', Principal: principalOf(principal), Action: action, Resource: resource,
    ...(Object.keys(condition).length ? { Condition: condition } : {}),
  };
}

/** What a request brings to the check: the action, who (an IAM principal; null for an unsigned caller), condition keys. */
export interface PolicyRequest {
  action: CheckedAction;
  principal: string | null;
  /** Condition keys the request has, e.g. lambda:FunctionUrlAuthType on a function URL request. */
  context: Readonly<Record<string, string>>;
}

/** Whether one of the statements allows the request. A condition on a key the request lacks fails, as in IAM. */
export function policyAllows(statements: readonly PermissionStatement[], r: PolicyRequest): boolean {
  return statements.some((s) => {
    if (s.Action !== r.action && s.Action !== 'lambda:*' && s.Action !== '*') return false;
    if (s.Principal !== '*' && !('AWS' in s.Principal && r.principal !== null && s.Principal.AWS === r.principal)) return false;
    return Object.entries(s.Condition ?? {}).every(([op, kv]) => Object.entries(kv).every(([k, want]) => {
      const have = r.context[k];
      if (have === undefined) return false;
      if (op === 'StringEquals' || op === 'Bool') return have === want;
      if (op === 'ArnLike') return new RegExp(`^${want.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(have);
      return false;
    }));
  });
}

/** For the Gatekeeper: whether a function's policy lets this key invoke it through the Invoke API. */
export const policyGrant = (store: Store): PolicyGrant => async (key, fn, qualifier) => {
  const p = await store.getResourcePolicy(fn, policyQualifier(qualifier));
  return p !== null && policyAllows(p.statements, { action: 'lambda:InvokeFunction', principal: keyPrincipal(key), context: {} });
};

export const policyDocument = (p: Pick<ResourcePolicy, 'statements'>) => JSON.stringify({ Version: '2012-10-17', Id: 'default', Statement: p.statements });

export function permissionRoutes(router: Router, platform: Platform): void {
  const { control, store } = platform;
  const region = platform.options.region;

  /** The function and the policy a call names; the version or alias must exist. */
  const target = async (ctx: RequestContext) => {
    const { name, qualifier: given } = functionTarget(ctx);
    const qualifier = given === LATEST ? null : given;
    await control.getVersion(name, qualifier);
    return { name, qualifier: policyQualifier(qualifier), given };
  };

  const notFound = (what: string) => new ThawError('THAW_E_PERMISSION_NOT_FOUND', what);

  /** Applies change to the policy as it is now; without RevisionId a concurrent change is retried over, with it refused. */
  const update = async (name: string, qualifier: string, revisionId: string | undefined, change: (statements: readonly PermissionStatement[]) => PermissionStatement[]) => {
    for (let attempt = 0; ; attempt++) {
      const current = await store.getResourcePolicy(name, qualifier);
      if (revisionId !== undefined && revisionId !== current?.revisionId) {
        throw new ThawError('THAW_E_REVISION_MISMATCH', `the policy of ${name} has revision ${current?.revisionId ?? '(none)'}, not ${revisionId}; GetPolicy shows the current one`);
      }
      const next = { functionName: name, qualifier, revisionId: randomUUID(), statements: change(current?.statements ?? []), updatedAt: platform.clock.now() };
      try {
        await store.putResourcePolicy(next, current?.revisionId ?? null);
        return next;
      } catch (err) {
        if (revisionId !== undefined || attempt >= 3 || (err as ThawError).code !== 'THAW_E_REVISION_MISMATCH') throw err;
      }
    }
  };

  router.on('POST', '/2015-03-31/functions/{name}/policy', async (ctx) => {
    const body = await readJson(ctx.req, BODY_BYTES);
    const t = await target(ctx);
    if (t.given === LATEST) throw new ThawError('THAW_E_QUALIFIER_INVALID', 'We currently do not support adding policies for $LATEST: leave out Qualifier for the function itself, or name a version or alias');
    const statement = statementFor(body, functionArn(region, t.name, t.qualifier));
    await update(t.name, t.qualifier, optString(body, 'RevisionId'), (statements) => {
      if (statements.some((s) => s.Sid === statement.Sid)) {
        throw new ThawError('THAW_E_PERMISSION_EXISTS', `The statement id (${statement.Sid}) provided already exists. Please provide a new statement id, or remove the existing statement.`);
      }
      const next = [...statements, statement];
      // Lambda's limit: every AddPermission rewrites the whole policy, so it may not grow without end.
      const size = Buffer.byteLength(policyDocument({ statements: next }));
      if (size > MAX_POLICY_BYTES) throw new ThawError('THAW_E_POLICY_TOO_LARGE', `The final policy size (${size}) is bigger than the limit (${MAX_POLICY_BYTES}): remove statements of ${t.name} first (RemovePermission)`);
      return next;
    });
    sendJson(ctx, 201, { Statement: JSON.stringify(statement) });
  });

  router.on('GET', '/2015-03-31/functions/{name}/policy', async (ctx) => {
    const t = await target(ctx);
    const p = await store.getResourcePolicy(t.name, t.qualifier);
    if (!p) throw notFound(`The resource you requested does not exist: ${functionArn(region, t.name, t.qualifier)} has no policy`);
    sendJson(ctx, 200, { Policy: policyDocument(p), RevisionId: p.revisionId });
  });

  router.on('DELETE', '/2015-03-31/functions/{name}/policy/{sid}', async (ctx) => {
    const t = await target(ctx);
    const revisionId = ctx.url.searchParams.get('RevisionId') ?? undefined;
    await update(t.name, t.qualifier, revisionId, (statements) => {
      if (!statements.some((s) => s.Sid === ctx.params.sid)) throw notFound(`Statement ${ctx.params.sid} is not found in resource policy of ${functionArn(region, t.name, t.qualifier)}`);
      return statements.filter((s) => s.Sid !== ctx.params.sid);
    });
    sendJson(ctx, 204, undefined);
  });
}
