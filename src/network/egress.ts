// Egress policies: which destinations a function's instances may reach through the platform's egress proxy.
// A policy is `none`, `public` (any public address: the default, as a Lambda function outside a VPC reaches
// the internet) or an allow-list of rules `HOST[:PORTS]` / `CIDR[:PORTS]` (PORTS: `443`, `8000-8100`,
// `80|443`; omitted: any port; HOST: `api.example.com` or `*.example.com`). Whatever the policy, the
// proxy never connects to a loopback, link-local, unspecified or multicast address or one of the host's
// own, unless an allow-list CIDR rule names that address explicitly. Pure apart from node:net's parsers.
// Imports src/core.
import { BlockList, isIP } from 'node:net';
import { ThawError } from '../core/errors.ts';
import type { EgressPolicy } from '../core/types.ts';

export type { EgressPolicy } from '../core/types.ts';
type EgressMode = EgressPolicy['mode'];

export const DEFAULT_EGRESS: EgressPolicy = { mode: 'public' };

interface PortRange { lo: number; hi: number }
type Rule =
  | { kind: 'host'; host: string; wildcard: boolean; ports: PortRange[] | null; text: string }
  | { kind: 'cidr'; net: BlockList; base: string; prefix: number; family: 4 | 6; ports: PortRange[] | null; text: string };

const MAX_RULES = 64;
const HOST = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

const invalid = (msg: string) => new ThawError('THAW_E_EGRESS_INVALID', msg);

function parsePorts(text: string, rule: string): PortRange[] {
  return text.split('|').map((p) => {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(p);
    const lo = Number(m?.[1]); const hi = Number(m?.[2] ?? m?.[1]);
    if (!m || lo < 1 || hi > 65535 || lo > hi) throw invalid(`egress rule ${JSON.stringify(rule)}: ports must be N, N-M or N|M with 1 <= N <= M <= 65535`);
    return { lo, hi };
  });
}

/** Splits `HOST[:PORTS]`, `CIDR[:PORTS]` and `[IPv6/len]:PORTS`. */
function splitRule(rule: string): [string, string | null] {
  const v6 = /^\[([^\]]+)\](?::(.+))?$/.exec(rule);
  if (v6) return [v6[1], v6[2] ?? null];
  const colons = rule.split(':').length - 1;
  if (colons >= 2) return [rule, null]; // a bare IPv6 address or CIDR
  const i = rule.lastIndexOf(':');
  return i < 0 ? [rule, null] : [rule.slice(0, i), rule.slice(i + 1)];
}

function parseRule(raw: string): Rule {
  const text = raw.trim().toLowerCase();
  if (!text) throw invalid('an egress rule is empty');
  const [target, portText] = splitRule(text);
  const ports = portText === null ? null : parsePorts(portText, raw);
  const cidr = /^(.+)\/(\d{1,3})$/.exec(target);
  const addr = cidr ? cidr[1] : target;
  const family = isIP(addr);
  if (family) {
    const prefix = cidr ? Number(cidr[2]) : family === 4 ? 32 : 128;
    if (prefix > (family === 4 ? 32 : 128)) throw invalid(`egress rule ${JSON.stringify(raw)}: prefix /${prefix} is too long for IPv${family}`);
    const net = new BlockList();
    net.addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6');
    return { kind: 'cidr', net, base: addr, prefix, family: family as 4 | 6, ports, text: raw };
  }
  if (cidr || !HOST.test(target) || target.length > 253) throw invalid(`egress rule ${JSON.stringify(raw)} is neither a host name (api.example.com, *.example.com) nor an address or CIDR (10.0.0.0/8), each optionally followed by :PORTS`);
  const wildcard = target.startsWith('*.');
  return { kind: 'host', host: wildcard ? target.slice(1) : target, wildcard, ports, text: raw };
}

/** Checks a policy as given by a user; throws THAW_E_EGRESS_INVALID saying what to fix. */
export function validateEgress(p: unknown): EgressPolicy {
  const o = p as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || !['none', 'public', 'allow'].includes(o.mode as string)) throw invalid('the egress mode must be none, public or allow');
  if (o.mode !== 'allow') {
    if (o.allow !== undefined && (!Array.isArray(o.allow) || o.allow.length)) throw invalid(`egress rules are only given with mode allow (the mode is ${o.mode})`);
    return { mode: o.mode as EgressMode };
  }
  if (!Array.isArray(o.allow) || !o.allow.length || !o.allow.every((r) => typeof r === 'string')) throw invalid('mode allow needs a list of rules, e.g. ["api.example.com:443", "10.0.0.0/24:5432"]');
  if (o.allow.length > MAX_RULES) throw invalid(`at most ${MAX_RULES} egress rules`);
  for (const r of o.allow as string[]) parseRule(r);
  return { mode: 'allow', allow: (o.allow as string[]).map((r) => r.trim()) };
}

/** `none`, `public`, or a comma-separated allow-list (the form of `thaw deploy --egress`). */
export function parseEgressSpec(spec: string): EgressPolicy {
  const s = spec.trim();
  if (s === 'none' || s === 'public') return { mode: s };
  return validateEgress({ mode: 'allow', allow: s.split(',').map((r) => r.trim()).filter(Boolean) });
}


/** Never reached unless a CIDR rule names it: this host and the addresses that mean "here". */
const SPECIAL_BLOCKS = [['127.0.0.0', 8, 'ipv4'], ['169.254.0.0', 16, 'ipv4'], ['0.0.0.0', 8, 'ipv4'], ['224.0.0.0', 3, 'ipv4'],
  ['::1', 128, 'ipv6'], ['::', 128, 'ipv6'], ['fe80::', 10, 'ipv6'], ['ff00::', 8, 'ipv6']] as const;
const SPECIAL = new BlockList();
for (const [a, n, t] of SPECIAL_BLOCKS) SPECIAL.addSubnet(a, n, t);
/** Not public: allowed only when the allow-list names the host or the range. */
const PRIVATE = new BlockList();
for (const [a, n, t] of [['10.0.0.0', 8, 'ipv4'], ['172.16.0.0', 12, 'ipv4'], ['192.168.0.0', 16, 'ipv4'], ['100.64.0.0', 10, 'ipv4'],
  ['192.0.0.0', 24, 'ipv4'], ['198.18.0.0', 15, 'ipv4'], ['fc00::', 7, 'ipv6']] as const) PRIVATE.addSubnet(a, n, t);

const family = (ip: string) => (isIP(ip) === 6 ? 'ipv6' : 'ipv4');

/** Whether a CIDR rule's whole range lies inside one local block (so the rule names local addresses). */
function rangeIsSpecial(r: { base: string; prefix: number; family: 4 | 6 }): boolean {
  return SPECIAL_BLOCKS.some(([addr, bits, t]) => (t === 'ipv6') === (r.family === 6) && r.prefix >= bits && blockOf(addr, bits, t).check(r.base, t));
}
const blockOf = (addr: string, bits: number, t: 'ipv4' | 'ipv6') => { const b = new BlockList(); b.addSubnet(addr, bits, t); return b; };
const portOk = (ports: PortRange[] | null, port: number) => ports === null || ports.some((r) => port >= r.lo && port <= r.hi);

/** A policy compiled for checking connections. */
export class EgressRules {
  readonly policy: EgressPolicy;
  readonly #rules: Rule[];

  constructor(policy: EgressPolicy) {
    this.policy = policy;
    this.#rules = policy.mode === 'allow' ? (policy.allow ?? []).map(parseRule) : [];
  }

  /**
   * Whether the host name (as asked for, before resolving) may be looked up at all: null if so, else why
   * not. Under an allow-list only names on it are looked up (CIDR rules admit addresses, not names), so
   * the platform resolves nothing a function was not granted.
   */
  checkName(host: string, port: number): string | null {
    if (this.policy.mode === 'none') return 'the function\'s egress policy is none';
    if (this.policy.mode === 'public' || isIP(host)) return null;
    const name = host.toLowerCase().replace(/\.$/, '');
    const named = this.#rules.some((r) => r.kind === 'host' && (r.wildcard ? name.endsWith(r.host) : name === r.host) && portOk(r.ports, port));
    return named ? null : `${name}:${port} is not on the function's egress allow-list (CIDR rules admit addresses, not names)`;
  }

  /**
   * Whether a connection to address:port (resolved from `host`) is allowed: null if so, else why not.
   * `own` holds this host's own addresses.
   */
  checkAddress(host: string, resolved: string, port: number, own: BlockList): string | null {
    if (this.policy.mode === 'none') return 'the function\'s egress policy is none';
    // An IPv4-mapped IPv6 address is the IPv4 address it carries.
    const address = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(resolved)?.[1] ?? resolved;
    const t = family(address);
    const covering = this.#rules.filter((r): r is Extract<Rule, { kind: 'cidr' }> => r.kind === 'cidr' && r.net.check(address, t) && portOk(r.ports, port));
    const shown = isIP(host) ? address : host;
    if (SPECIAL.check(address, t)) {
      // Only a rule that lies wholly inside the local ranges names them (0.0.0.0/0 does not).
      return covering.some((r) => rangeIsSpecial(r)) ? null : `${shown} is a loopback, link-local or other local address`;
    }
    if (own.check(address, t)) {
      // This host's own addresses and Thaw's private networks: only a rule for exactly that address.
      return covering.some((r) => r.prefix === (r.family === 4 ? 32 : 128)) ? null : `${shown} is this host's own address or on a Thaw private network (join the network to reach it)`;
    }
    if (covering.length) return null;
    if (this.policy.mode === 'public') return PRIVATE.check(address, t) ? `${address} is a private address (egress policy public allows public addresses only)` : null;
    const name = host.toLowerCase().replace(/\.$/, '');
    const named = !isIP(host) && this.#rules.some((r) => r.kind === 'host' && (r.wildcard ? name.endsWith(r.host) : name === r.host) && portOk(r.ports, port));
    return named ? null : `${isIP(host) ? address : `${name} (${address})`}:${port} is not on the function's egress allow-list`;
  }
}
