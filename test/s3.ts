// A real S3-protocol server for tests: s3rver (npm) in its own child process on a free loopback port with a
// temp dir, one bucket made up front, and the AWS variables that point an S3 client (Thaw's origin, the AWS
// CLI, the SDK) at it. A child process rather than in-process so a test can make the origin vanish mid-run
// (`stop()`), and so the test's own event loop never stalls the server.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

export interface RunningS3 {
  /** `http://127.0.0.1:PORT`, for AWS_ENDPOINT_URL_S3 or an S3Client's `endpoint`. */
  readonly endpoint: string;
  /** A bucket that exists when startS3() resolves. */
  readonly bucket: string;
  /** AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION for a child process. */
  readonly env: Record<string, string>;
  /** Kills the server and removes its dir; idempotent. The bucket's contents are gone with it. */
  stop(): Promise<void>;
}

// s3rver checks signatures against its one built-in key pair.
const ACCESS_KEY = 'S3RVER';
const SECRET_KEY = 'S3RVER';

// The server script: start s3rver with the bucket, print the bound address as one JSON line, run until killed.
const SERVER = `
const S3rver = require('s3rver');
const [dir, bucket] = process.argv.slice(1);
new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: bucket }] })
  .run().then((a) => process.stdout.write(JSON.stringify(a) + '\\n'), (e) => { console.error(e); process.exit(1); });
// Its parent gone (a test process killed before its after hooks), the server goes too.
process.stdin.on('close', () => process.exit(0)).resume();
`;

export async function startS3(bucket = 'thaw-test'): Promise<RunningS3> {
  const dir = await mkdtemp(join(tmpdir(), 'thaw-s3-'));
  const child = spawn(process.execPath, ['-e', SERVER, dir, bucket], { stdio: ['pipe', 'pipe', 'pipe'], cwd: join(import.meta.dirname, '..') });
  let err = '';
  child.stderr!.on('data', (c) => { err += c; });
  const exited = once(child, 'exit').then(([code]) => { throw new Error(`s3rver exited (${code}) before serving: ${err}`); });
  const bound = new Promise<{ port: number }>((resolve) => {
    let out = '';
    child.stdout!.on('data', (c) => {
      out += c;
      const line = out.split('\n')[0];
      if (out.includes('\n')) resolve(JSON.parse(line));
    });
  });
  let port: number;
  try {
    ({ port } = await Promise.race([bound, exited]));
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  exited.catch(() => {});
  const endpoint = `http://127.0.0.1:${port}`;
  let stopped: Promise<void> | undefined;
  return {
    endpoint,
    bucket,
    env: { AWS_ENDPOINT_URL_S3: endpoint, AWS_ACCESS_KEY_ID: ACCESS_KEY, AWS_SECRET_ACCESS_KEY: SECRET_KEY, AWS_REGION: 'us-east-1' },
    stop() {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const gone = once(child, 'exit');
          child.kill('SIGKILL');
          await gone;
        }
        await rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
