// Thaw private networks (VPC attach): each network is a Linux bridge on this node with an IPv4 subnet.
// An instance of a function whose VpcConfig names the network runs in a network namespace with one veth
// port on that bridge, an address of the subnet and a route to the subnet only (no default route): raw TCP
// and UDP to the network's hosts, nothing else. The bridge has no address of the host unless the network
// was created with host access, and no IPv6, so the host's own services stay out of reach.
//
// Creating such a namespace (namespace, veth pair, bridge port, address, route) costs two `ip` runs and
// tens of milliseconds, so namespaces are made ahead, a few per network, and an instance joins a ready one
// (nsenter in the sandbox's start, a setns call). A namespace serves one instance and is destroyed after.
// Needs root and iproute2. Imports node built-ins, src/core and src/sandbox (the mount helper).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, mkdirSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { ThawError } from '../core/errors.ts';
import type { NetworkRecord, SecurityGroupRecord } from '../core/types.ts';
import { sgRuleset } from './sg.ts';
import type { Mounter } from '../sandbox/index.ts';

export interface Attached {
  /** The namespace file to join (nsenter --net=). */
  readonly netns: string;
  readonly network: string;
  readonly address: string;
  /** Whether it was ready (pooled) or made for this instance. */
  readonly pooled: boolean;
}

interface Ready { netns: string; address: string; hostNumber: number }

/** Ready namespaces of one network with one set of security groups (their rules are loaded when made). */
interface Pool {
  groups: readonly SecurityGroupRecord[];
  ready: Ready[];
  making: number;
  failures: number;
}

interface NetState {
  record: NetworkRecord;
  bridge: string;
  base: number;
  prefix: number;
  used: Set<number>;
  /** By the names of the security groups, sorted ('' for none). */
  pools: Map<string, Pool>;
}

const groupsKey = (groups: readonly SecurityGroupRecord[]) => groups.map((g) => g.name).sort().join(',');

/** Ready namespaces kept per network that has VPC functions. */
export const NETNS_POOL_SIZE = 2;
/** How long after an attach its network's pool is refilled (off the start that took one). */
const REFILL_DELAY_MS = 300;

/** Parses an IPv4 CIDR of /16 to /29 into its base address (as a number) and prefix. Pure. */
export function parseSubnet(cidr: string): { base: number; prefix: number } {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const prefix = Number(m?.[5]);
  if (!m || octets.some((o) => o > 255) || prefix < 16 || prefix > 29) {
    throw new ThawError('THAW_E_NETWORK_INVALID', `subnet ${JSON.stringify(cidr)} is not an IPv4 CIDR with a prefix of /16 to /29 (e.g. 10.77.0.0/24)`);
  }
  const addr = ((octets[0] << 24) >>> 0) + (octets[1] << 16) + (octets[2] << 8) + octets[3];
  const mask = maskOf(prefix);
  if ((addr & mask) >>> 0 !== addr) throw new ThawError('THAW_E_NETWORK_INVALID', `subnet ${cidr} has host bits set; did you mean ${ipOf((addr & mask) >>> 0)}/${prefix}?`);
  for (const [net, bits] of [[0x7f000000, 8], [0xa9fe0000, 16], [0xe0000000, 3], [0, 8]] as const) {
    if (((addr & maskOf(bits)) >>> 0) === net) throw new ThawError('THAW_E_NETWORK_INVALID', `subnet ${cidr} is in a reserved range (loopback, link-local, multicast or 0/8)`);
  }
  return { base: addr, prefix };
}

const maskOf = (prefix: number) => (0xffffffff << (32 - prefix)) >>> 0;
const sameNet = (a: number, b: number, prefix: number) => ((a & maskOf(prefix)) >>> 0) === ((b & maskOf(prefix)) >>> 0);

/** Whether two subnets share any address. */
export function subnetsOverlap(a: string, b: string): boolean {
  const x = parseSubnet(a); const y = parseSubnet(b);
  return sameNet(x.base, y.base, Math.min(x.prefix, y.prefix));
}

/** The host's address on a network with host access: .1 of its subnet. */
export const hostAddressOf = (subnet: string) => ipOf(parseSubnet(subnet).base + 1);

/**
 * Refuses a new network's subnet that holds an address of this host (outside Thaw's own bridges): the
 * host would answer for it on the bridge. Checked when a network is created, not at every start.
 */
export function checkSubnetFree(cidr: string): void {
  const { base, prefix } = parseSubnet(cidr);
  for (const [ifname, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family !== 'IPv4' || ifname.startsWith('tb')) continue;
      const n = a.address.split('.').reduce((x, o) => x * 256 + Number(o), 0);
      if (sameNet(n, base, prefix)) throw new ThawError('THAW_E_NETWORK_INVALID', `subnet ${cidr} holds ${a.address}, an address of this host (${ifname}); pick a subnet no interface of the host uses`);
    }
  }
}

const ipOf = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

/** Runs a command with `input` on its stdin, rejecting with its stderr. */
function run(cmd: string, args: string[], input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (t: string) => { err += t; });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${args.includes(NFT) ? 'nft' : 'ip'}: ${err.trim() || `exit ${code}`}`))));
    child.stdin!.on('error', () => { /* reported through exit */ });
    child.stdin!.end(input);
  });
}

/** Runs `ip -batch -` (optionally inside a namespace). */
const ipBatch = (lines: string[], netns?: string) => (netns
  ? run('/usr/bin/nsenter', [`--net=${netns}`, IP, '-batch', '-'], lines.join('\n') + '\n')
  : run(IP, ['-batch', '-'], lines.join('\n') + '\n'));

const NFT = '/usr/sbin/nft';
const IP = '/usr/sbin/ip';
export function nftAvailable(): boolean {
  try { accessSync(NFT, constants.X_OK); return true; } catch { return false; }
}

const sysctl = (key: string, value: string) => { try { writeFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, value); } catch { /* absent (no IPv6) */ } };

export interface PrivateNetworksOptions {
  mounter: Mounter;
  /** Where the namespace files live (made 0700). */
  dir: string;
  scopeTag: string;
  clock: Clock;
  onError(m: string): void;
  /** Ready namespaces kept per network in use (default NETNS_POOL_SIZE; 0: each made when needed). */
  poolSize?: number;
  /** Called after a network was made or removed on this node. */
  onChange?(): void;
}

export class PrivateNetworks {
  #o: PrivateNetworksOptions;
  #nets = new Map<string, NetState>();
  /** Every namespace made and not yet destroyed, with its network and host number. */
  #owners = new Map<string, { net: NetState; host: number }>();
  #timers = new Set<TimerHandle>();
  /** Namespaces being made or destroyed: close() waits for them, so no mount request reaches the helper after it. */
  #destroying = new Set<Promise<void>>();
  #inFlight = new Set<Promise<unknown>>();
  #seq = 0;
  #closed = false;
  created = 0;
  taken = 0;

  constructor(o: PrivateNetworksOptions) { this.#o = o; }

  /** Removes what a killed run left: namespace files (and with them their veths) and this node's bridges. */
  async start(records: NetworkRecord[]): Promise<number> {
    mkdirSync(this.#o.dir, { recursive: true, mode: 0o700 });
    let removed = 0;
    for (const f of readdirSync(this.#o.dir)) {
      await this.#o.mounter.umount(join(this.#o.dir, f)).catch(() => {});
      try { unlinkSync(join(this.#o.dir, f)); removed++; } catch { /* gone */ }
    }
    for (const r of records) await this.ensure(r);
    return removed;
  }

  /** Whether this host can make private networks (iproute2 is there). */
  available(): boolean {
    try { accessSync(IP, constants.X_OK); return true; } catch { return false; }
  }

  /** The bridge's interface name: short (15 bytes), one per network and server. */
  bridgeName(name: string) { return `tb${createHash('sha256').update(`${this.#o.scopeTag}/${name}`).digest('hex').slice(0, 10)}`; }

  /** Makes the network's bridge on this node (idempotent). */
  async ensure(record: NetworkRecord): Promise<void> {
    if (this.#nets.has(record.name)) return;
    const { base, prefix } = parseSubnet(record.subnet);
    const bridge = this.bridgeName(record.name);
    await ipBatch([`link del ${bridge}`]).catch(() => {});
    await ipBatch([`link add ${bridge} type bridge`]);
    sysctl(`net.ipv6.conf.${bridge}.disable_ipv6`, '1');
    // What arrives on the bridge for this host is taken only when it could have come from there (strict
    // reverse-path filter: without host access nothing routes back through the bridge, so broadcast and
    // multicast from instances are dropped too), and ARP is answered only for the bridge's own address.
    sysctl(`net.ipv4.conf.${bridge}.rp_filter`, '1');
    sysctl(`net.ipv4.conf.${bridge}.arp_ignore`, record.hostAccess ? '1' : '8');
    const lines = [`link set ${bridge} up`];
    if (record.hostAccess) lines.push(`addr add ${ipOf(base + 1)}/${prefix} dev ${bridge}`);
    await ipBatch(lines);
    this.#nets.set(record.name, { record, bridge, base, prefix, used: new Set(), pools: new Map() });
    this.#o.onChange?.();
  }

  /** Removes the network's bridge and its ready namespaces (instances still on it keep their port until they end). */
  async remove(name: string): Promise<void> {
    const n = this.#nets.get(name);
    if (!n) return;
    this.#nets.delete(name);
    this.#o.onChange?.();
    for (const p of n.pools.values()) for (const r of p.ready.splice(0)) await this.#destroy(r.netns);
    await ipBatch([`link del ${n.bridge}`]).catch(() => {});
  }

  /**
   * A namespace on one of the networks for a new instance, with the security groups' rules loaded (none:
   * the whole network is reachable): a ready one at once, else one made now. Pools refill in the background.
   */
  async attach(networks: readonly string[], groups: readonly SecurityGroupRecord[] = []): Promise<Attached> {
    if (groups.length && !nftAvailable()) throw new ThawError('THAW_E_NETWORK_UNAVAILABLE', 'security groups are enforced with nftables, which is not installed here: apt-get install nftables');
    const key = groupsKey(groups);
    const pools = networks.map((name) => {
      const n = this.#nets.get(name);
      if (!n) throw new ThawError('THAW_E_NETWORK_NOT_FOUND', `network ${name} does not exist on this node`);
      let p = n.pools.get(key);
      if (!p) { p = { groups, ready: [], making: 0, failures: 0 }; n.pools.set(key, p); }
      return { n, p };
    });
    const { n, p } = pools.find((x) => x.p.ready.length) ?? pools[0];
    const ready = p.ready.shift();
    // Later, not now: each namespace made runs `ip` twice, and a fork blocks the server's event loop for
    // milliseconds, which would land on the start that is under way.
    this.#scheduleRefill(pools);
    if (ready) {
      this.taken++;
      return { netns: ready.netns, network: n.record.name, address: ready.address, pooled: true };
    }
    const made = await this.#make(n, p);
    return { netns: made.netns, network: n.record.name, address: made.address, pooled: false };
  }

  /** The instance that used it is gone: the namespace goes too (its veth with it) and its address is free. */
  async detach(netns: string): Promise<void> {
    await this.#destroy(netns);
  }

  #scheduleRefill(pools: { n: NetState; p: Pool }[]) {
    const timer = this.#o.clock.setTimer(() => { this.#timers.delete(timer); for (const { n, p } of pools) this.#refill(n, p); }, REFILL_DELAY_MS);
    this.#timers.add(timer);
  }

  #refill(n: NetState, p: Pool) {
    while (!this.#closed && p.failures < 3 && p.ready.length + p.making < (this.#o.poolSize ?? NETNS_POOL_SIZE)) {
      p.making++;
      const made = this.#make(n, p);
      this.#inFlight.add(made);
      void made.catch(() => {}).finally(() => this.#inFlight.delete(made));
      void made.then((r) => {
        p.failures = 0;
        if (this.#closed || this.#nets.get(n.record.name) !== n) void this.#destroy(r.netns);
        else p.ready.push(r);
      }, (err) => {
        // Removed (or closing) while it was being made: its bridge is gone, nothing to report.
        if (this.#closed || this.#nets.get(n.record.name) !== n) return;
        p.failures++;
        this.#o.onError(`could not prepare a namespace on network ${n.record.name}: ${(err as Error).message}`);
      }).finally(() => { p.making--; });
    }
  }

  async #make(n: NetState, pool: Pool): Promise<Ready> {
    const size = 2 ** (32 - n.prefix);
    let host = 2;
    while (n.used.has(host)) host++;
    if (host >= size - 1) throw new ThawError('THAW_E_SANDBOX_START_FAILED', `network ${n.record.name} (${n.record.subnet}) has no free address`);
    n.used.add(host);
    const seq = ++this.#seq;
    const netns = join(this.#o.dir, `ns-${n.record.name}-${seq}-${host}`);
    const hostEnd = `tv${this.#o.scopeTag.slice(0, 4)}${seq.toString(36).padStart(9, '0')}`.slice(0, 15);
    const address = ipOf(n.base + host);
    try {
      this.#owners.set(netns, { net: n, host });
      await this.#o.mounter.netns(netns);
      // Inside: the veth's far end comes back to this (the server's) namespace as hostEnd.
      await ipBatch([
        `link add eth0 type veth peer name ${hostEnd} netns ${process.pid}`,
        `addr add ${address}/${n.prefix} dev eth0`,
        'link set eth0 up',
      ], netns);
      // The security groups' rules before the namespace is handed out (nothing runs in it yet).
      if (pool.groups.length) await run('/usr/bin/nsenter', [`--net=${netns}`, NFT, '-f', '-'], sgRuleset(pool.groups));
      sysctl(`net.ipv6.conf.${hostEnd}.disable_ipv6`, '1');
      await ipBatch([`link set ${hostEnd} master ${n.bridge} up`]);
      this.created++;
      return { netns, address, hostNumber: host };
    } catch (err) {
      await this.#destroy(netns);
      throw err;
    }
  }

  #destroy(netns: string): Promise<void> {
    const p = this.#destroyNow(netns);
    this.#destroying.add(p);
    void p.finally(() => this.#destroying.delete(p));
    return p;
  }

  async #destroyNow(netns: string) {
    const owner = this.#owners.get(netns);
    this.#owners.delete(netns);
    owner?.net.used.delete(owner.host);
    await this.#o.mounter.umount(netns).catch(() => {});
    try { unlinkSync(netns); } catch { /* gone */ }
  }

  view() {
    return [...this.#nets.values()].map((n) => {
      const pools = [...n.pools.values()];
      const ready = pools.reduce((k, p) => k + p.ready.length, 0);
      const making = pools.reduce((k, p) => k + p.making, 0);
      return { name: n.record.name, subnet: n.record.subnet, bridge: n.bridge, hostAccess: n.record.hostAccess, ready, making, attached: n.used.size - ready - making, securityGroupSets: pools.map((p) => p.groups.map((g) => g.name)) };
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#timers) t.cancel();
    this.#timers.clear();
    while (this.#inFlight.size) await Promise.allSettled([...this.#inFlight]);
    for (const n of [...this.#nets.keys()]) await this.remove(n);
    for (const p of [...this.#owners.keys()]) await this.#destroy(p);
    while (this.#destroying.size) await Promise.allSettled([...this.#destroying]);
  }
}
