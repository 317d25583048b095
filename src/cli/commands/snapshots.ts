// `thaw snapshots N [--wait]`: the snapshot of each published version: pending (with its stage), ready
// (size, build time) or failed (with the reason; the version runs without one).
import { setTimeout as sleep } from 'node:timers/promises';
import { fnPath } from '../client.ts';
import { positionals, table, type Command } from '../command.ts';

interface Snap { version: string; status: string; reason: string | null; sizeBytes: number | null; buildMs: number | null; progress: { stage: string; elapsedMs: number } | null }

export const snapshotsCommand: Command = {
  name: 'snapshots',
  usage: 'snapshots N [--wait]',
  summary: 'show the snapshot status of each published version',
  help: '  --wait   poll until no snapshot is pending, showing progress\n',
  options: { wait: { type: 'boolean' } },
  async run(args) {
    const [name] = positionals(args, ['N'], this.usage);
    const { client, io } = args;
    for (;;) {
      const { enabled, snapshots } = await client.get(`/thaw/v1/functions/${fnPath(name)}/snapshots`) as { enabled: boolean; snapshots: Snap[] };
      const pending = snapshots.filter((s) => s.status === 'pending');
      if (args.values.wait && pending.length) {
        io.err(`${pending.map((s) => `version ${s.version}: ${s.progress ? `${s.progress.stage} (${(s.progress.elapsedMs / 1000).toFixed(1)} s)` : 'queued'}`).join(', ')}\n`);
        await sleep(500);
        continue;
      }
      if (!enabled) io.err('snapshots are disabled on this server\n');
      io.out(table(['VERSION', 'STATUS', 'SIZE', 'BUILD', 'DETAIL'], snapshots.map((s) => [
        s.version, s.status, s.sizeBytes ? `${(s.sizeBytes / 1024 / 1024).toFixed(1)} MB` : '-', s.buildMs ? `${(s.buildMs / 1000).toFixed(1)} s` : '-',
        s.status === 'pending' ? (s.progress?.stage ?? 'queued') : s.reason ?? '',
      ])));
      return 0;
    }
  },
};
