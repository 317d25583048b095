// Networks of instances: what a confined instance may reach. Public entry of src/network; imports src/core.
// Every confined instance has a network namespace of its own with only loopback; outbound HTTP(S) goes
// through the platform's egress proxy pair, checked against the function's egress policy.
import { join } from 'node:path';
import type { Clock } from '../core/clock.ts';
import { ThawError } from '../core/errors.ts';
import type { NetworkRecord, SecurityGroupRecord, VpcConfig } from '../core/types.ts';
import type { Mounter } from '../sandbox/index.ts';
import type { EgressPolicy } from './egress.ts';
import { EgressProxies, type EgressDenial } from './proxies.ts';
import { PrivateNetworks } from './vpc.ts';

export { DEFAULT_EGRESS, EgressRules, parseEgressSpec, validateEgress, type EgressPolicy } from './egress.ts';
export { EgressProxies, type EgressDenial } from './proxies.ts';
export { NETNS_POOL_SIZE, PrivateNetworks, checkSubnetFree, hostAddressOf, nftAvailable, parseSubnet, subnetsOverlap, type Attached } from './vpc.ts';
export { SG_NAME, parseSgRule, sgRuleset, validateSecurityGroup } from './sg.ts';

/** Where the relay inside every sandbox listens (the sandbox's own loopback; nothing else is there). */
export const RELAY_ADDRESS = '127.0.0.1:3128';
/** Where the proxies' sockets appear inside a sandbox. */
export const EGRESS_INSIDE = '/run/thaw/egress';

/** What the agent asks of the network side when it starts and stops instances. */
export interface InstanceNetwork {
  /** Variables every runtime starts with: the proxy settings its relay serves. */
  runtimeEnv(): Record<string, string>;
  /**
   * What a new sandbox binds (its own directory of the proxies' sockets, at its inside path); prepares the
   * sockets. Released with the instance.
   */
  binds(instanceId: string): { host: string; inside: string }[];
  /** Lets an instance out under its function's policy; the token goes to its relay with init. */
  grant(instanceId: string, label: string, policy: EgressPolicy): string;
  /** A namespace on one of the VPC's networks for a new instance (a ready one when there is one). */
  attach(instanceId: string, vpc: VpcConfig): Promise<{ netns: string; address: string; pooled: boolean }>;
  /** The instance is gone: its grant is revoked and its private network namespace destroyed. */
  release(instanceId: string): void;
}

export class NetworkPlane implements InstanceNetwork {
  readonly egress: EgressProxies;
  readonly vpc: PrivateNetworks;
  #attached = new Map<string, string>();

  #securityGroups: (names: readonly string[]) => Promise<SecurityGroupRecord[]>;

  constructor(o: {
    dir: string; netnsDir: string; scopeTag: string; mounter: Mounter; clock: Clock;
    /** The records of security groups named in a VpcConfig (from the store). */
    securityGroups(names: readonly string[]): Promise<SecurityGroupRecord[]>;
    onDenied(d: EgressDenial): void; onError(m: string): void;
  }) {
    this.#securityGroups = o.securityGroups;
    this.egress = new EgressProxies({ dir: o.dir, clock: o.clock, onDenied: o.onDenied, onError: o.onError });
    this.vpc = new PrivateNetworks({
      mounter: o.mounter, dir: o.netnsDir, scopeTag: o.scopeTag, clock: o.clock, onError: o.onError,
      // The proxies never connect into a private network: it is reached by joining it, under its groups.
      onChange: () => this.egress.setNetworks(this.vpc.view().map((n) => n.subnet)),
    });
  }

  /** Starts the proxies and makes the bridges of the stored networks; returns leftover namespaces removed. */
  async start(networks: NetworkRecord[]): Promise<number> {
    await this.egress.start();
    return this.vpc.start(networks);
  }

  async attach(instanceId: string, vpc: VpcConfig) {
    if (!vpc.networks.length) throw new ThawError('THAW_E_VPC_INVALID', 'a VpcConfig without networks has nothing to attach');
    const groups = vpc.securityGroups?.length ? await this.#securityGroups(vpc.securityGroups) : [];
    const a = await this.vpc.attach(vpc.networks, groups);
    this.#attached.set(instanceId, a.netns);
    return a;
  }

  runtimeEnv(): Record<string, string> {
    const proxy = `http://${RELAY_ADDRESS}`;
    // Not NODE_USE_ENV_PROXY: the bootstrap turns the proxy on at the first use of fetch, http or https.
    return {
      HTTP_PROXY: proxy, HTTPS_PROXY: proxy, http_proxy: proxy, https_proxy: proxy,
      NO_PROXY: 'localhost,127.0.0.1,::1', no_proxy: 'localhost,127.0.0.1,::1',
      THAW_EGRESS_RELAY: RELAY_ADDRESS,
      THAW_EGRESS_SOCKETS: this.egress.sockets.map((p) => join(EGRESS_INSIDE, p)).join(':'),
    };
  }

  binds(instanceId: string) { return [{ host: this.egress.prepare(instanceId), inside: EGRESS_INSIDE }]; }
  grant(instanceId: string, label: string, policy: EgressPolicy): string { return this.egress.grant(instanceId, label, policy); }
  release(instanceId: string): void {
    this.egress.revoke(instanceId);
    const netns = this.#attached.get(instanceId);
    if (netns) {
      this.#attached.delete(instanceId);
      void this.vpc.detach(netns);
    }
  }

  view() { return { ...this.egress.view(), networks: this.vpc.view() }; }

  async close(): Promise<void> {
    await this.egress.close();
    await this.vpc.close();
  }
}
