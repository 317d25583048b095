import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ThawError } from '../core/errors.ts';
import { parseSgRule, sgRuleset, validateSecurityGroup } from './sg.ts';

test('security group rules: CIDR, ports and protocol; anything else is THAW_E_SECURITY_GROUP_INVALID', () => {
  assert.deepEqual(parseSgRule('10.77.0.5:5432/tcp'), { family: 4, cidr: '10.77.0.5/32', ports: '5432', proto: 'tcp' });
  assert.deepEqual(parseSgRule('10.77.0.0/24'), { family: 4, cidr: '10.77.0.0/24', ports: null, proto: null });
  assert.deepEqual(parseSgRule('10.77.0.0/24:53|8000-8100'), { family: 4, cidr: '10.77.0.0/24', ports: '53, 8000-8100', proto: null });
  assert.deepEqual(parseSgRule('[fd00::/8]:443/udp'), { family: 6, cidr: 'fd00::/8', ports: '443', proto: 'udp' });
  for (const bad of ['', 'db.example.com:5432', '10.0.0.0/33', '10.0.0.1:0', '10.0.0.1:70000', '10.0.0.1/tcpx', '10.0.0.1/24/8', 'any']) {
    assert.throws(() => parseSgRule(bad), (e: unknown) => e instanceof ThawError && e.code === 'THAW_E_SECURITY_GROUP_INVALID', bad);
  }
  assert.throws(() => validateSecurityGroup('Bad', ['10.0.0.1']), /name/);
  assert.throws(() => validateSecurityGroup('ok', []), /1-64 rules/);
});

test('the ruleset allows loopback, replies and the groups\' destinations on the network device, and drops the rest', () => {
  const text = sgRuleset([{ name: 'db', allow: ['10.77.0.5:5432/tcp', '10.77.0.0/24:53'], description: '', createdAt: 0 }]);
  assert.match(text, /oifname != "eth0" accept/);
  assert.match(text, /ct state established,related accept/);
  assert.match(text, /ip daddr 10\.77\.0\.5\/32 meta l4proto tcp th dport \{ 5432 \} accept/);
  assert.match(text, /ip daddr 10\.77\.0\.0\/24 meta l4proto udp th dport \{ 53 \} accept/);
  assert.match(text, /counter reject with icmpx admin-prohibited\n  \}\n\}\n$/);
});
