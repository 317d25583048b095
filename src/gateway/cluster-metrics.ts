// A control plane's /metrics: each agent's gauges (instances by state and tier, pool, code cache, memory),
// from its last heartbeat, under node=<agent name>, beside the fleet's own counts (agents, placements by
// reason, re-placed and lost invocations). Invocation and decision counters need nothing here: the agents'
// records and decisions are republished on this process's channels. Imports src/core, src/cluster, src/telemetry.
import type { InstanceState } from '../core/types.ts';
import type { Fleet, Heartbeat } from '../cluster/index.ts';
import type { NodeMetrics, ThawMetrics } from '../telemetry/index.ts';

export function fleetMetrics(metrics: ThawMetrics, fleet: Fleet): void {
  metrics.addSource(() => fleet.heartbeats().map((hb) => ({ node: hb.name, collect: async () => agentMetrics(hb) })));
  metrics.setCluster(() => ({ agents: fleet.members().length, placements: fleet.placements, replaced: fleet.replaced, lost: fleet.lost }));
}

/** An agent's gauges as its heartbeat carries them (one that sends none shows its instances only). */
function agentMetrics(hb: Heartbeat): NodeMetrics {
  const m = hb.metrics;
  return {
    instances: hb.instances.map((i) => ({ functionName: i.functionName, state: i.state as InstanceState })),
    pool: m?.pool ?? [],
    codeCache: m ? { ...m.codeCache, maxBytes: m.codeCache.maxBytes ?? Infinity } : { entries: 0, bytes: 0, maxBytes: Infinity, hits: 0, misses: 0, evictions: 0 },
    memory: m?.memory ?? { ramBytes: 0, swapBytes: 0, swapBudgetBytes: 0, tiers: {} },
    memoryBudgetBytes: hb.capacity.memoryBudgetMb * 1048576,
  };
}
