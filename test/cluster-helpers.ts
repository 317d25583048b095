// Helpers for the tests that run a real cluster on loopback: a request signed with a key, an agent
// process (`thaw agent`) started and waited on until it joined, and the FUSE mounts left under a dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { signRequest } from '../src/gateway/index.ts';
import { eventually } from './helpers.ts';

export const THAW_BIN = join(resolve(import.meta.dirname, '..'), 'bin', 'thaw.js');
export const ROLE = 'arn:aws:iam::000000000000:role/x';

export interface Key { AccessKeyId: string; SecretAccessKey: string }
export interface AgentProc { name: string; child: ChildProcess; cacheDir: string; dataDir: string; stderr: () => string; exited: Promise<void> }

/** Mount points under a directory (FUSE package images of an agent's code cache). */
export const mountsUnder = (dir: string) => readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((mp) => mp?.startsWith(dir + '/'));

/** A signed request to the control plane; a string body goes as it is (garbage included), anything else as JSON. */
export async function signed(url: string, key: Key, method = 'GET', body?: unknown): Promise<Response> {
  const u = new URL(url);
  const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const headers: Record<string, string> = text ? { 'content-type': 'application/json' } : {};
  Object.assign(headers, await signRequest({ method, url: u, headers, body: text, accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey, region: 'us-east-1' }));
  return fetch(u, { method, headers, body: text });
}

/** Starts `thaw agent` (process sandbox, no pool) and resolves once it says it joined. */
export function startAgent(name: string, control: string, key: Key, dataDir: string, cacheDir: string, extra: string[] = []): Promise<AgentProc> {
  const child = spawn(process.execPath, [THAW_BIN, 'agent', '--control', control, '--name', name, '--data', dataDir, '--cache', cacheDir, '--sandbox', 'process', '--pool-size', '0', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, THAW_ACCESS_KEY_ID: key.AccessKeyId, THAW_SECRET_ACCESS_KEY: key.SecretAccessKey, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' },
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c) => { out += c; });
  child.stderr!.on('data', (c) => { err += c; });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return eventually(async () => out.includes(`Thaw agent ${name} is up`) && true, `agent ${name} to join (stderr: ${err})`, 60_000)
    .then(() => ({ name, child, cacheDir, dataDir, stderr: () => err, exited }));
}
