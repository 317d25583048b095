// The control plane's cluster routes (thaw up --no-agent): agents join and heartbeat, forward their
// telemetry, make context.invoke calls, fetch packages, and put, fetch and report the snapshots they build
// (the control plane's origin and store keep them for the cluster); /thaw/v1/cluster shows the fleet. The agent
// routes require a key of role agent (or admin), see auth.ts. Imports src/core and src/cluster.
import { ThawError } from '../core/errors.ts';
import { sha256 } from '../codestore/index.ts';
import { callSchema, heartbeatSchema, parseMessage, snapshotKeyFingerprint, snapshotReportSchema, telemetrySchema, type Fleet } from '../cluster/index.ts';
import { readBody, readJson, sendJson, sendObject, type Router } from './http.ts';
import type { Platform } from './platform.ts';

const MAX_MESSAGE_BYTES = 32 * 1024 * 1024;
/** A snapshot is a function's heap right after init; the server's limit on a signed body (from --max-package-mb) applies first. */
const MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024;

export function clusterRoutes(router: Router, platform: Platform): void {
  const fleet = (): Fleet => {
    if (!platform.fleet) throw new ThawError('THAW_E_OPERATION_UNSUPPORTED', 'this Thaw runs its own instances and takes no agents; start the control plane with `thaw up --no-agent`');
    return platform.fleet;
  };

  let keyFailure: string | null = null;
  const snapshotKey = async (): Promise<string | null> => {
    try {
      return (await platform.agent.snapshots.key()).toString('base64');
    } catch (err) {
      const why = (err as Error).message;
      if (why !== keyFailure) process.stderr.write(`thaw: the agents get no snapshot key, so they build and restore no snapshots: ${why}; give the control plane DATA/keys/snapshot.key (32 random bytes, base64)\n`);
      keyFailure = why;
      return null;
    }
  };

  router.on('GET', '/thaw/v1/cluster', async (ctx) => {
    sendJson(ctx, 200, fleet().view());
  });

  router.on('POST', '/thaw/v1/cluster/agents/{name}', async (ctx) => {
    const f = fleet();
    const hb = parseMessage(heartbeatSchema, await readJson(ctx.req, MAX_MESSAGE_BYTES), 'heartbeat');
    if (hb.name !== ctx.params.name) throw new ThawError('THAW_E_CLUSTER_MESSAGE_INVALID', `the heartbeat names agent ${hb.name} but was sent for ${ctx.params.name}`);
    const answer = f.heartbeat(hb);
    // Over the agent's signed request only: the key every agent encrypts and decrypts the cluster's snapshots
    // with, until the agent holds this one. Without it the agents run without snapshots; they still join.
    const key = await snapshotKey();
    if (key && hb.snapshotKey !== snapshotKeyFingerprint(key)) answer.snapshotKey = key;
    sendJson(ctx, 200, answer);
  });

  router.on('POST', '/thaw/v1/cluster/telemetry', async (ctx) => {
    // 200 with what was taken and refused (and why the first was): one bad event does not cost the others.
    sendJson(ctx, 200, fleet().republish(parseMessage(telemetrySchema, await readJson(ctx.req, MAX_MESSAGE_BYTES), 'telemetry')));
  });

  router.on('POST', '/thaw/v1/cluster/calls', async (ctx) => {
    fleet();
    sendJson(ctx, 200, await platform.call(parseMessage(callSchema, await readJson(ctx.req, 8 * 1024 * 1024), 'call')));
  });

  router.on('GET', '/thaw/v1/cluster/code/{sha}', async (ctx) => {
    await sendObject(ctx, platform.blobs, ctx.params.sha, 'package');
  });

  // Encrypted snapshots, content-addressed like packages, in the control plane's snapshot origin.
  const snapshotSha = (sha: string) => {
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new ThawError('THAW_E_PACKAGE_NOT_FOUND', `no snapshot ${sha}: a snapshot is named by the SHA-256 of its encrypted bytes`);
    return sha;
  };
  router.on('GET', '/thaw/v1/cluster/snapshots/blobs/{sha}', async (ctx) => {
    await sendObject(ctx, platform.agent.snapshots.origin, snapshotSha(ctx.params.sha), 'snapshot');
  });

  router.on('PUT', '/thaw/v1/cluster/snapshots/blobs/{sha}', async (ctx) => {
    fleet();
    const sha = snapshotSha(ctx.params.sha);
    const bytes = await readBody(ctx.req, MAX_SNAPSHOT_BYTES);
    if (sha256(bytes) !== sha) throw new ThawError('THAW_E_CLUSTER_MESSAGE_INVALID', `the snapshot sent as ${sha} has another SHA-256`);
    await platform.agent.snapshots.origin.put(bytes, sha);
    sendJson(ctx, 204, undefined);
  });

  router.on('POST', '/thaw/v1/cluster/snapshots/records', async (ctx) => {
    const f = fleet();
    const report = parseMessage(snapshotReportSchema, await readJson(ctx.req, 64 * 1024), 'snapshot report');
    const r = report.record;
    const version = await platform.control.getVersion(r.functionName, r.version).then((x) => x.version, async (err) => {
      // The version went while the agent built: what it stored goes too, no record names it.
      if (r.sha256 && !(await platform.store.isSnapshotInUse(r.sha256))) await platform.agent.snapshots.origin.delete(r.sha256);
      throw err;
    });
    await platform.store.putSnapshot(r);
    sendJson(ctx, 200, { pushedTo: f.snapshotReported(report, version) });
  });
}
