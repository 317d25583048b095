// Thaw for the benchmark, in its own process: `node bench/server.ts DATA_DIR CACHE_DIR [OPTIONS_JSON]`;
// prints THAW_URL.
import { startThaw } from '../src/gateway/index.ts';

const [dataDir, cacheDir, extra] = process.argv.slice(2);
// Version prewarm off unless asked: the bench changes a function's configuration to get a fresh version
// for every measured start, and a prewarm of it would turn the start it measures into a warm one.
const thaw = await startThaw({ port: 0, dataDir, cacheDir, versionPrewarm: false, ...(extra ? JSON.parse(extra) : {}) });
process.stdout.write(`THAW_URL ${thaw.url}\n`);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { void thaw.destroy().then(() => process.exit(0)); });
