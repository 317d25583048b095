// Thaw private networks under /thaw/v1/networks (admin to change, see auth.ts): create a network (a bridge
// on the node with an IPv4 subnet), list them with what each node holds ready, delete one no function uses.
// A refused create leaves nothing: the bridge is made before the record is kept, and removed if keeping fails.
import { ThawError } from '../core/errors.ts';
import type { FunctionVersion, NetworkRecord, SecurityGroupRecord } from '../core/types.ts';
import { NETWORK_NAME } from '../control/index.ts';
import { checkSubnetFree, hostAddressOf, subnetsOverlap, validateSecurityGroup } from '../network/index.ts';
import { optBoolean, optString, readJson, sendJson, type Router } from './http.ts';
import type { Platform } from './platform.ts';
import type { Store } from '../store/index.ts';


/** Functions with a version (or $LATEST) that matches. */
async function usersOf(store: Store, uses: (v: FunctionVersion) => boolean): Promise<string[]> {
  const users: string[] = [];
  for (const fn of await store.listFunctions()) {
    if ([fn.latest, ...(await store.listVersions(fn.name))].some(uses)) users.push(fn.name);
  }
  return users;
}

export function networkRoutes(router: Router, platform: Platform): void {
  const { store } = platform;


  const shape = (n: NetworkRecord) => {
    const node = platform.network?.vpc.view().find((v) => v.name === n.name);
    return { Name: n.name, Subnet: n.subnet, HostAccess: n.hostAccess, HostAddress: n.hostAccess ? hostAddressOf(n.subnet) : null, CreatedAt: new Date(n.createdAt).toISOString(), Node: node ?? null };
  };

  router.on('GET', '/thaw/v1/networks', async (ctx) => {
    sendJson(ctx, 200, { networks: (await store.listNetworks()).map(shape) });
  });

  router.on('POST', '/thaw/v1/networks', async (ctx) => {
    const body = await readJson(ctx.req, 16 * 1024);
    const name = optString(body, 'Name');
    if (!name || !NETWORK_NAME.test(name)) throw new ThawError('THAW_E_NETWORK_INVALID', `network name ${JSON.stringify(name ?? '')} is not valid: use 1-32 lowercase letters, digits and hyphens, starting with a letter`);
    const subnet = optString(body, 'Subnet') ?? '';
    checkSubnetFree(subnet);
    if (!platform.network) throw new ThawError('THAW_E_NETWORK_UNAVAILABLE', `private networks need the namespaces sandbox; this node runs ${platform.driver.name}`);
    const existing = await store.listNetworks();
    if (existing.some((n) => n.name === name)) throw new ThawError('THAW_E_NETWORK_EXISTS', `network ${name} already exists`);
    const clash = existing.find((n) => subnetsOverlap(n.subnet, subnet));
    if (clash) throw new ThawError('THAW_E_NETWORK_EXISTS', `subnet ${subnet} overlaps network ${clash.name} (${clash.subnet})`);
    const record: NetworkRecord = { name, subnet, hostAccess: optBoolean(body, 'HostAccess') ?? false, createdAt: platform.clock.now() };
    await platform.network.vpc.ensure(record);
    try {
      await store.createNetwork(record);
    } catch (err) {
      await platform.network.vpc.remove(name);
      throw err;
    }
    sendJson(ctx, 201, shape(record));
  });

  router.on('DELETE', '/thaw/v1/networks/{name}', async (ctx) => {
    const name = ctx.params.name;
    if (!(await store.getNetwork(name))) throw new ThawError('THAW_E_NETWORK_NOT_FOUND', `network ${JSON.stringify(name)} does not exist`);
    const users = await usersOf(store, (v) => v.config.vpc?.networks.includes(name) ?? false);
    if (users.length) throw new ThawError('THAW_E_NETWORK_IN_USE', `network ${name} is in the VpcConfig of ${users.join(', ')} (a version or $LATEST); change or delete them first`);
    await store.deleteNetwork(name);
    await platform.network?.vpc.remove(name);
    sendJson(ctx, 204, undefined);
  });
}

/** Security groups under /thaw/v1/security-groups: immutable named allow-lists (create, list, delete). */
export function securityGroupRoutes(router: Router, platform: Platform): void {
  const { store } = platform;
  const shape = (g: SecurityGroupRecord) => ({ Name: g.name, Allow: g.allow, Description: g.description, CreatedAt: new Date(g.createdAt).toISOString() });

  router.on('GET', '/thaw/v1/security-groups', async (ctx) => {
    sendJson(ctx, 200, { securityGroups: (await store.listSecurityGroups()).map(shape) });
  });

  router.on('POST', '/thaw/v1/security-groups', async (ctx) => {
    const body = await readJson(ctx.req, 64 * 1024);
    const { name, allow } = validateSecurityGroup(body.Name, body.Allow);
    const description = optString(body, 'Description') ?? '';
    if (description.length > 256) throw new ThawError('THAW_E_SECURITY_GROUP_INVALID', 'Description is at most 256 characters');
    const record: SecurityGroupRecord = { name, allow, description, createdAt: platform.clock.now() };
    await store.createSecurityGroup(record);
    sendJson(ctx, 201, shape(record));
  });

  router.on('DELETE', '/thaw/v1/security-groups/{name}', async (ctx) => {
    const name = ctx.params.name;
    if (!(await store.getSecurityGroup(name))) throw new ThawError('THAW_E_SECURITY_GROUP_NOT_FOUND', `security group ${JSON.stringify(name)} does not exist`);
    const users = await usersOf(store, (v) => v.config.vpc?.securityGroups?.includes(name) ?? false);
    if (users.length) throw new ThawError('THAW_E_SECURITY_GROUP_IN_USE', `security group ${name} is in the VpcConfig of ${users.join(', ')} (a version or $LATEST); change or delete them first`);
    await store.deleteSecurityGroup(name);
    sendJson(ctx, 204, undefined);
  });
}
