// Security groups: named allow-lists of destinations on a private network, enforced by nftables inside
// each instance's network namespace (which the instance cannot change: it has no capabilities). A rule is
// `CIDR[:PORTS][/tcp|/udp]`; a function with groups reaches on its network only what one of them allows
// (their union, as on AWS); anything else is refused at once (connect fails with EHOSTUNREACH). Pure: builds the
// ruleset text that `nft -f -` loads. Imports src/core.
import { isIP } from 'node:net';
import { ThawError } from '../core/errors.ts';
import type { SecurityGroupRecord } from '../core/types.ts';

interface SgRule { family: 4 | 6; cidr: string; ports: string | null; proto: 'tcp' | 'udp' | null }

const invalid = (m: string) => new ThawError('THAW_E_SECURITY_GROUP_INVALID', m);
export const SG_NAME = /^[a-z][a-z0-9-]{0,31}$/;

export function parseSgRule(raw: string): SgRule {
  const bad = () => invalid(`security group rule ${JSON.stringify(raw)} is not CIDR[:PORTS][/tcp|/udp], e.g. 10.77.0.5/32:5432/tcp or 10.77.0.0/24`);
  let text = raw.trim().toLowerCase();
  let proto: SgRule['proto'] = null;
  const p = /\/(tcp|udp)$/.exec(text);
  if (p) { proto = p[1] as 'tcp' | 'udp'; text = text.slice(0, -4); }
  let target = text; let portText: string | null = null;
  const v6 = /^\[([^\]]+)\](?::(.+))?$/.exec(text);
  if (v6) { target = v6[1]; portText = v6[2] ?? null; }
  else if (text.split(':').length === 2) { [target, portText] = text.split(':'); }
  const [addr, prefixText, extra] = target.split('/');
  const family = isIP(addr);
  if (!family || extra !== undefined || (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText))) throw bad();
  const prefix = prefixText === undefined ? (family === 4 ? 32 : 128) : Number(prefixText);
  if (prefix > (family === 4 ? 32 : 128)) throw bad();
  let ports: string | null = null;
  if (portText !== null) {
    ports = portText.split('|').map((part) => {
      const r = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
      const lo = Number(r?.[1]); const hi = Number(r?.[2] ?? r?.[1]);
      if (!r || lo < 1 || hi > 65535 || lo > hi) throw bad();
      return lo === hi ? String(lo) : `${lo}-${hi}`;
    }).join(', ');
  }
  return { family: family as 4 | 6, cidr: `${addr}/${prefix}`, ports, proto };
}

export function validateSecurityGroup(name: unknown, allow: unknown): { name: string; allow: string[] } {
  if (typeof name !== 'string' || !SG_NAME.test(name)) throw invalid(`security group name ${JSON.stringify(name)} is not valid: 1-32 lowercase letters, digits and hyphens, starting with a letter`);
  if (!Array.isArray(allow) || !allow.length || allow.length > 64 || !allow.every((r) => typeof r === 'string')) throw invalid('a security group needs 1-64 rules (Allow), e.g. ["10.77.0.5/32:5432/tcp"]');
  for (const r of allow as string[]) parseSgRule(r);
  return { name, allow: (allow as string[]).map((r) => r.trim()) };
}

/**
 * The nftables ruleset for an instance namespace whose network interface is `dev`: everything on
 * loopback, replies, and what the groups allow; the rest refused.
 */
export function sgRuleset(groups: readonly SecurityGroupRecord[], dev = 'eth0'): string {
  const lines = [
    'table inet thaw {',
    '  chain out {',
    '    type filter hook output priority 0; policy accept;',
    `    oifname != "${dev}" accept`,
    '    ct state established,related accept',
  ];
  for (const g of groups) {
    for (const raw of g.allow) {
      const r = parseSgRule(raw);
      const daddr = `${r.family === 4 ? 'ip' : 'ip6'} daddr ${r.cidr}`;
      const protos = r.proto ? [r.proto] : r.ports ? ['tcp', 'udp'] : [null];
      for (const p of protos) lines.push(`    ${daddr}${p ? ` meta l4proto ${p}` : ''}${p && r.ports ? ` th dport { ${r.ports} }` : ''} accept`);
    }
  }
  // Refused, not dropped: a dropped SYN would leave connect() waiting; this fails at once (EHOSTUNREACH).
  lines.push('    counter reject with icmpx admin-prohibited', '  }', '}');
  return lines.join('\n') + '\n';
}
