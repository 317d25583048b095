// `thaw network create|list|delete`: Thaw private networks (a bridge with an IPv4 subnet on the node).
// Functions join one with `thaw deploy --network NAME` (Lambda's VpcConfig.SubnetIds) and reach its hosts
// over raw TCP and UDP; everything else still goes through the egress proxy.
import { ThawError } from '../../core/errors.ts';
import { list, str, table, type Command, type CommandArgs } from '../command.ts';

interface NetworkShape { Name: string; Subnet: string; HostAccess: boolean; HostAddress: string | null; CreatedAt: string; Node: { ready: number; attached: number; bridge: string } | null }

export const networkCommand: Command = {
  name: 'network',
  usage: 'network create NAME --subnet CIDR [--host-access] | network list | network delete NAME | network sg create NAME --allow RULE... | network sg list | network sg delete NAME',
  summary: 'private networks that functions join for raw TCP/UDP (VpcConfig)',
  help: [
    '  --subnet CIDR   the network\'s IPv4 subnet, /16 to /29, e.g. 10.77.0.0/24; instances get .2 and up',
    '  --host-access   give this host the address .1 on the network, so services it runs there are reachable',
    '                  (off by default: instances then reach only the other hosts plugged into the network)',
    '  --allow RULE    (sg create) a destination instances may reach on their network, CIDR[:PORTS][/tcp|/udp],',
    '                  e.g. 10.77.0.5/32:5432/tcp; repeat for more. A function with security groups',
    '                  (`thaw deploy --security-group NAME`) reaches only what one of them allows',
    '  --description D (sg create)',
    '  --json          print JSON',
    '',
    'Plug a host into the network by attaching its interface to the bridge `thaw network list` shows.',
    '',
  ].join('\n'),
  options: { subnet: { type: 'string' }, 'host-access': { type: 'boolean' }, allow: { type: 'string', multiple: true }, description: { type: 'string' }, json: { type: 'boolean' } },
  async run(args) {
    const { io, client } = args;
    if (args.positionals[0] === 'sg') return securityGroups(args, this.usage);
    const [verb, name, extra] = args.positionals;
    if (extra !== undefined || !['create', 'list', 'delete'].includes(verb ?? '')) throw new ThawError('THAW_E_CLI_USAGE', `usage: thaw ${this.usage}`);
    if (verb === 'list') {
      const nets: NetworkShape[] = (await client.get('/thaw/v1/networks')).networks;
      if (args.values.json) { io.out(`${JSON.stringify(nets, null, 2)}\n`); return 0; }
      io.out(table(['NAME', 'SUBNET', 'HOST ADDRESS', 'BRIDGE', 'READY', 'ATTACHED'], nets.map((n) => [n.Name, n.Subnet, n.HostAddress ?? '-', n.Node?.bridge ?? '-', String(n.Node?.ready ?? 0), String(n.Node?.attached ?? 0)])));
      return 0;
    }
    if (!name) throw new ThawError('THAW_E_CLI_USAGE', `network ${verb} needs the network's name`);
    if (verb === 'create') {
      const subnet = str(args, 'subnet');
      if (!subnet) throw new ThawError('THAW_E_CLI_USAGE', 'network create needs --subnet CIDR, e.g. --subnet 10.77.0.0/24');
      const made: NetworkShape = (await client.call('POST', '/thaw/v1/networks', { json: { Name: name, Subnet: subnet, HostAccess: args.values['host-access'] === true } })).json();
      if (args.values.json) { io.out(`${JSON.stringify(made, null, 2)}\n`); return 0; }
      io.out(`created network ${made.Name} (${made.Subnet}) on bridge ${made.Node?.bridge ?? '?'}${made.HostAddress ? `; this host is ${made.HostAddress} on it` : ''}\n`);
      return 0;
    }
    await client.call('DELETE', `/thaw/v1/networks/${encodeURIComponent(name)}`);
    io.out(`deleted network ${name}\n`);
    return 0;
  },
};

async function securityGroups(args: CommandArgs, usage: string): Promise<number> {
  const [, verb, name, extra] = args.positionals;
  const { io, client } = args;
  if (extra !== undefined || !['create', 'list', 'delete'].includes(verb ?? '')) throw new ThawError('THAW_E_CLI_USAGE', `usage: thaw ${usage}`);
  if (verb === 'list') {
    const groups: { Name: string; Allow: string[]; Description: string }[] = (await client.get('/thaw/v1/security-groups')).securityGroups;
    if (args.values.json) { io.out(`${JSON.stringify(groups, null, 2)}\n`); return 0; }
    io.out(table(['NAME', 'ALLOW', 'DESCRIPTION'], groups.map((g) => [g.Name, g.Allow.join(' '), g.Description])));
    return 0;
  }
  if (!name) throw new ThawError('THAW_E_CLI_USAGE', `network sg ${verb} needs the group's name`);
  if (verb === 'create') {
    const allow = list(args, 'allow');
    if (!allow.length) throw new ThawError('THAW_E_CLI_USAGE', 'network sg create needs at least one --allow CIDR[:PORTS][/tcp|/udp]');
    const made = (await client.call('POST', '/thaw/v1/security-groups', { json: { Name: name, Allow: allow, Description: str(args, 'description') ?? '' } })).json();
    if (args.values.json) { io.out(`${JSON.stringify(made, null, 2)}\n`); return 0; }
    io.out(`created security group ${made.Name}: ${made.Allow.join(', ')}\n`);
    return 0;
  }
  await client.call('DELETE', `/thaw/v1/security-groups/${encodeURIComponent(name)}`);
  io.out(`deleted security group ${name}\n`);
  return 0;
}
