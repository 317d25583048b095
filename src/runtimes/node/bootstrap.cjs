// @ts-check
'use strict';
// The Node runtime bootstrap: the first code an instance runs. It starts generic (no function bound),
// becomes one function version on `init`, then serves `invoke` messages. Plain CommonJS on purpose:
// type stripping would add ~50 ms to every process start, and the snapshot builder bundles this file
// with the user's code into one script (V8 startup snapshots take a single CommonJS entry).
// Imports only node built-ins.
const { AsyncLocalStorage } = require('node:async_hooks');
const nodeModule = require('node:module');
const { pathToFileURL } = require('node:url');
const { format } = require('node:util');

/** @typedef {import('./protocol.ts').HostMessage} HostMessage */
/** @typedef {import('./protocol.ts').RuntimeMessage} RuntimeMessage */
/** @typedef {import('./protocol.ts').InitSpec} InitSpec */
/** @typedef {import('./protocol.ts').InvokeSpec} InvokeSpec */
/** @typedef {import('./protocol.ts').SerializedError} SerializedError */

/** @type {{ beforeSnapshot: (() => unknown)[], afterRestore: (() => unknown)[] }} */
const hooks = { beforeSnapshot: [], afterRestore: [] };

// Runtime hooks for snapshots (as SnapStart's): code that holds connections or secrets registers what to
// do before its memory is snapshotted and after each restore. Harmless where no snapshot is taken.
Object.defineProperty(globalThis, 'thaw', {
  value: Object.freeze({
    /** @param {() => unknown} fn */ onBeforeSnapshot: (fn) => { hooks.beforeSnapshot.push(fn); },
    /** @param {() => unknown} fn */ onAfterRestore: (fn) => { hooks.afterRestore.push(fn); },
  }),
  enumerable: false,
});

// Lambda's `awslambda` global, there before the handler module loads, as its Node runtime has it:
// streamifyResponse marks a handler as streaming (it is then called with a response stream), and
// HttpResponseStream.from makes the stream begin with the HTTP prelude a function URL reads (a JSON
// document of statusCode, headers and cookies, then 8 NUL bytes). Removed at init when the function sets
// AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA, as there.
const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HANDLER_HIGHWATERMARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
Object.defineProperty(globalThis, 'awslambda', {
  value: {
    /** @param {any} handler @param {{ highWaterMark?: number }} [options] */
    streamifyResponse: (handler, options) => {
      handler[HANDLER_STREAMING] = 'response';
      if (typeof options?.highWaterMark === 'number') handler[HANDLER_HIGHWATERMARK] = Math.trunc(options.highWaterMark);
      return handler;
    },
    HttpResponseStream: class HttpResponseStream {
      /** @param {any} stream @param {unknown} prelude */
      static from(stream, prelude) {
        stream.setContentType('application/vnd.awslambda.http-integration-response');
        // JSON has no NUL byte, so the delimiter cannot occur inside the prelude.
        const json = JSON.stringify(prelude);
        stream._onBeforeFirstWrite = (/** @type {(chunk: unknown) => void} */ write) => { write(json); write(new Uint8Array(8)); };
        return stream;
      }
    },
  },
  writable: true, configurable: true, enumerable: false,
});

/** Runs the before-snapshot hooks, in the order registered. */
async function runBeforeSnapshot() { for (const h of hooks.beforeSnapshot) await h(); }

/** The Node major this runtime runs on: Lambda's runtime of that major decides how handlers are called. */
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

/**
 * Lambda's Node 24 runtime refuses callback handlers at init: a function declaring a third parameter
 * (event, context, callback), unless it streams (its third is the context). It goes by the declared length
 * alone, so an async function of three parameters is refused too (frameworks' handlers that accept either
 * style, e.g. @codegenie/serverless-express, hono/lambda-edge: their issues #707 and #4772). So does this
 * one on Node 24; on 20 and 22 they are called the callback way (callHandler in main).
 * @param {Function} fn
 */
function checkHandler(fn) {
  if (NODE_MAJOR >= 24 && fn.length >= 3 && /** @type {any} */ (fn)[HANDLER_STREAMING] !== 'response') {
    throw Object.assign(new Error(`the handler declares ${fn.length} parameters (event, context, callback): callback handlers are not supported from Node.js 24 on. Make it an async function of (event, context) that returns its result, or use runtime nodejs22.x. See https://docs.aws.amazon.com/lambda/latest/dg/nodejs-handler.html`), { name: 'Runtime.CallbackHandlerDeprecated' });
  }
}

/**
 * Restored processes share everything the snapshot held, including crypto.randomUUID's cache of random
 * bytes: use it up so the next UUID comes from fresh entropy. (Math.random is reseeded by V8.)
 */
function freshEntropy() {
  // Required here, not at the top: loading node:crypto costs every runtime start ~12 ms.
  const crypto = require('node:crypto');
  for (let i = 0; i < 128; i++) crypto.randomUUID();
}

/**
 * A full garbage collection, for shrinking the heap before a freeze. `--expose-gc` on the command line
 * would cost every runtime start ~25 ms (Node then cannot use its built-in startup snapshot), so the
 * flag is set here, when first needed.
 * @returns {(() => void) | null}
 */
function collector() {
  try {
    require('node:v8').setFlagsFromString('--expose-gc');
    return require('node:vm').runInNewContext('gc');
  } catch {
    return null;
  }
}
/** @type {(() => void) | null | undefined} */
let gc;

/**
 * Points fetch, http and https at the proxy settings (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) the first time
 * the function uses them, not at process start: Node's NODE_USE_ENV_PROXY would load undici and the HTTP
 * agents in every runtime start (measured: user CPU of an empty script 70 -> 155 ms here under load), a
 * cost only functions that go out should pay. fetch is wrapped; the first import or require of http,
 * https, http2, net or tls is seen by a resolve hook. The relay itself starts then too.
 */
function proxyOnFirstUse(/** @type {() => void} */ startRelay) {
  const http = () => /** @type {any} */ (require('node:http'));
  let done = false;
  const setup = () => {
    if (done) return;
    done = true;
    startRelay();
    const h = http();
    if (typeof h.setGlobalProxyFromEnv === 'function') h.setGlobalProxyFromEnv();
  };
  // Node 20 has no module.registerHooks to see the first import by, nor a built-in proxy for fetch and http
  // to follow: the relay starts now, for what reads HTTP_PROXY itself (README, Runtimes).
  if (typeof nodeModule.registerHooks !== 'function') { setup(); return; }
  const realFetch = globalThis.fetch;
  globalThis.fetch = /** @type {typeof fetch} */ (function fetch(input, init) { setup(); return realFetch(input, init); });
  nodeModule.registerHooks({
    resolve(specifier, context, next) {
      if (!done && /^(node:)?(https?|http2|net|tls)$/.test(specifier)) setup();
      return next(specifier, context);
    },
  });
}

/** Must equal FILLING_MARKER in src/codestore/ondemand.ts. */
const FILLING_MARKER = '.thaw-filling';
const MAX_INIT_FILES = 5000;
/** How long one missing file is waited for before it is taken as missing (a fill that never ends). */
const PARTIAL_WAIT_MS = 120_000;

/**
 * On-demand code (codestore/cache.ts): the hooks that make a partial code tree safe to run on, and that
 * record what init read. While FILLING_MARKER is in the tree, a file under it that is not there yet is
 * waited for (synchronously: require() and readFileSync are synchronous) until it appears or the fill ends
 * (then ENOENT is real); the host renames each file in whole, so a file that exists is complete. Listing a
 * directory waits for the whole fill (a listing of part of it would be wrong). Recording notes every code
 * file loaded as a module or read through fs while init runs. Returns `files()` (the recorded paths,
 * relative) and `stopRecording()`.
 * @param {string} codeDir @param {{ partial: boolean, record: boolean }} mode
 */
function codeHooks(codeDir, mode) {
  const fs = require('node:fs');
  const path = require('node:path');
  const { fileURLToPath } = require('node:url');
  const marker = path.join(codeDir, FILLING_MARKER);
  const real = { existsSync: fs.existsSync };
  let partial = mode.partial && real.existsSync(marker);
  /** @type {Set<string> | null} */
  let recorded = mode.record ? new Set() : null;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const under = (/** @type {unknown} */ p) => {
    let s = typeof p === 'string' ? p : p instanceof URL && p.protocol === 'file:' ? fileURLToPath(p) : null;
    if (s === null) return null;
    s = path.resolve(s);
    return s.startsWith(codeDir + path.sep) ? s : null;
  };
  const filling = () => partial && (partial = real.existsSync(marker));
  /** Waits until `file` is in the tree or the fill is over (`file` null: until the fill is over). */
  const waitFor = (/** @type {string | null} */ file) => {
    const until = Date.now() + PARTIAL_WAIT_MS;
    while (filling() && !(file !== null && real.existsSync(file)) && Date.now() < until) Atomics.wait(sleeper, 0, 0, 5);
  };
  const note = (/** @type {string} */ file) => {
    if (recorded && recorded.size < MAX_INIT_FILES && path.basename(file) !== FILLING_MARKER) recorded.add(path.relative(codeDir, file).split(path.sep).join('/'));
  };
  /** Before an fs call on `p`: wait for it if it is code not there yet; note it if it is read. */
  const before = (/** @type {unknown} */ p, /** @type {boolean} */ reads, /** @type {boolean} */ listing = false) => {
    if (!partial && !recorded) return;
    const file = under(p);
    if (file === null) return;
    if (listing) { if (filling()) waitFor(null); return; }
    if (filling() && !real.existsSync(file)) waitFor(file);
    if (reads) note(file);
  };
  /** @param {string} name @param {boolean} reads @param {boolean} [listing] */
  const wrap = (name, reads, listing) => {
    const f = /** @type {any} */ (fs)[name];
    if (typeof f !== 'function') return;
    /** @type {any} */ (fs)[name] = Object.defineProperty(/** @this {any} @param {any[]} args */ function (...args) { before(args[0], reads, listing); return f.apply(this, args); }, 'name', { value: name });
  };
  for (const n of ['readFileSync', 'readFile', 'openSync', 'open', 'createReadStream']) wrap(n, true);
  for (const n of ['statSync', 'lstatSync', 'existsSync', 'accessSync', 'stat', 'lstat', 'access', 'realpathSync']) wrap(n, false);
  for (const n of ['readdirSync', 'readdir', 'opendirSync']) wrap(n, false, true);
  const fsp = /** @type {any} */ (fs.promises);
  for (const [n, reads, listing] of /** @type {[string, boolean, boolean][]} */ ([['readFile', true, false], ['open', true, false], ['stat', false, false], ['access', false, false], ['readdir', false, true]])) {
    const f = fsp[n];
    fsp[n] = /** @this {any} @param {any[]} args */ function (...args) { before(args[0], reads, listing); return f.apply(this, args); };
  }
  if (typeof nodeModule.registerHooks === 'function') {
    nodeModule.registerHooks({
      // A module not found while the tree fills may be one not there yet: found again once the fill is over.
      resolve(specifier, context, next) {
        try { return next(specifier, context); } catch (err) {
          const code = /** @type {any} */ (err)?.code;
          if (!filling() || (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND')) throw err;
          waitFor(null);
          return next(specifier, context);
        }
      },
      load(url, context, next) {
        const file = url.startsWith('file:') ? under(new URL(url)) : null;
        if (file !== null) {
          if (filling() && !real.existsSync(file)) waitFor(file);
          note(file);
        }
        return next(url, context);
      },
    });
  }
  return {
    files: () => (recorded ? [...recorded] : undefined),
    stopRecording: () => { recorded = null; },
  };
}

/**
 * The egress relay: inside a sandbox the network has only loopback, so outbound HTTP(S) goes to a local
 * proxy address (HTTP_PROXY / HTTPS_PROXY, used by fetch, http and https once proxyOnFirstUse turns them on) where
 * this relay passes each connection to the platform's egress proxy on a Unix socket, first line
 * `THAW <token>` (the instance's grant). Two sockets, active and standby: a connection goes to the one that
 * answered last and moves to the other when it does not answer.
 * @param {string} listen host:port
 * @param {string[]} sockets
 * @param {() => string | null} token the grant (null until init)
 */
function startEgressRelay(listen, sockets, token) {
  const net = require('node:net');
  let preferred = 0;
  const server = net.createServer((client) => {
    client.on('error', () => {});
    // The function's own end of the connection holds its event loop; the relay's ends must not (callHandler).
    client.unref();
    if (!token()) { client.destroy(); return; }
    client.pause();
    const attempt = (/** @type {number} */ tries) => {
      const i = (preferred + tries) % sockets.length;
      const up = net.connect(sockets[i]);
      up.unref();
      let connected = false;
      up.on('error', () => {
        if (connected) { client.destroy(); return; }
        if (tries + 1 < sockets.length) attempt(tries + 1);
        else client.destroy();
      });
      up.once('connect', () => {
        connected = true;
        preferred = i;
        up.write(`THAW ${token()}\n`);
        client.pipe(up);
        up.pipe(client);
        client.resume();
        client.once('close', () => up.destroy());
        up.once('close', () => client.destroy());
      });
    };
    attempt(0);
  });
  server.on('error', (err) => { process.stderr.write(`thaw bootstrap: the egress relay could not listen on ${listen}: ${err.message}\n`); });
  const i = listen.lastIndexOf(':');
  server.listen(Number(listen.slice(i + 1)), listen.slice(0, i));
  server.unref();
}

/**
 * Starts the runtime loop. `preloaded` is the handler when this process was restored from a snapshot
 * with the user's module already loaded and initialized.
 * @param {{ handler: Function } | null} preloaded
 */
function main(preloaded) {
  // The channel to the agent: newline-delimited JSON on the socket at fd 3 (see src/sandbox/channel.ts).
  /** @type {import('node:net').Socket} */
  let channel;
  try {
    channel = new (require('node:net').Socket)({ fd: 3, readable: true, writable: true });
  } catch {
    process.stderr.write('thaw bootstrap: must be started by the Thaw agent with its channel at fd 3\n');
    process.exit(70);
  }
  const send = /** @type {(m: RuntimeMessage, cb?: () => void) => void} */ (
    (m, cb) => { channel.write(`${JSON.stringify(m)}\n`, cb); }
  );

  /** The instance's egress grant, from init; the relay presents it. */
  /** @type {string | null} */
  let egressToken = null;
  const relayAddress = process.env.THAW_EGRESS_RELAY;
  const relaySockets = process.env.THAW_EGRESS_SOCKETS;
  // Started at the first use of fetch, http or https, not now: a listening server costs every start's
  // init ~10 ms here (its listen runs through Node's lookup path while the handler module loads).
  if (relayAddress && relaySockets) proxyOnFirstUse(() => startEgressRelay(relayAddress, relaySockets.split(':'), () => egressToken));

  /** @type {AsyncLocalStorage<string>} the invocation id a piece of code runs for */
  const current = new AsyncLocalStorage();
  /** @type {Set<string>} */
  const inFlight = new Set();
  /** @type {InitSpec | null} */
  let fn = null;
  /** @type {Function | null} */
  let handler = null;
  /** @type {Promise<void> | null} the loader warm-up started after `ready` */
  let warming = null;

  // Output goes over IPC, tagged with the invocation it belongs to, so logs stay in order with results
  // and are attributed exactly even when one instance serves several invocations at once.
  for (const stream of /** @type {const} */ (['stdout', 'stderr'])) {
    const target = process[stream];
    // Nothing is written to the stream itself, so it must not hold the event loop (callHandler's empty loop).
    /** @type {any} */ (target).unref?.();
    target.write = /** @type {any} */ ((/** @type {any} */ chunk, /** @type {any[]} */ ...rest) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      send({ type: 'log', invocationId: current.getStore() ?? soleInvocation(), stream, text });
      const cb = rest.find((r) => typeof r === 'function');
      if (cb) queueMicrotask(cb);
      return true;
    });
  }

  const soleInvocation = () => (inFlight.size === 1 ? inFlight.values().next().value ?? null : null);

  patchConsole();

  /**
   * console.* as Lambda's Node runtime writes it: Text lines (timestamp, request id, level, message), or with
   * AWS_LAMBDA_LOG_FORMAT=JSON one JSON record per call (timestamp, level, requestId, message; an Error's
   * type, message and stack), dropping levels below AWS_LAMBDA_LOG_LEVEL. Applied at start and again at init,
   * when the function's environment (and so its LoggingConfig) is known.
   */
  function patchConsole() {
    const json = process.env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === 'JSON';
    const levels = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];
    const least = Math.max(0, levels.indexOf(process.env.AWS_LAMBDA_LOG_LEVEL?.toUpperCase() ?? 'TRACE'));
    const methods = /** @type {const} */ ([['trace', 'TRACE'], ['debug', 'DEBUG'], ['info', 'INFO'], ['log', 'INFO'], ['warn', 'WARN'], ['error', 'ERROR'], ['fatal', 'FATAL']]);
    for (const [method, level] of methods) {
      // FATAL is never dropped, as on Lambda.
      const dropped = level !== 'FATAL' && levels.indexOf(level) < least;
      /** @type {any} */ (console)[method] = dropped ? () => {} : (/** @type {any[]} */ ...args) => {
        const id = current.getStore() ?? soleInvocation() ?? undefined;
        if (method === 'trace' && !json) args = [format(...args) + '\n' + (new Error().stack ?? '').split('\n').slice(2).join('\n')];
        const line = json ? jsonRecord(id, level, args) : `${new Date().toISOString()}\t${id}\t${level}\t${format(...args)}`;
        process.stdout.write(`${line.replaceAll('\n', '\r')}\n`);
      };
    }
  }

  /** @param {any} _ @param {unknown} value */
  const errorFields = (_, value) => value instanceof Error
    ? { errorType: value.constructor?.name ?? 'UnknownError', errorMessage: value.message, stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack, ...value }
    : value;

  /** Lambda's JSON log record: one argument is kept as it is (an object stays an object), several are formatted. */
  function jsonRecord(/** @type {string | undefined} */ requestId, /** @type {string} */ level, /** @type {any[]} */ args) {
    /** @type {Record<string, unknown>} */
    const r = { timestamp: new Date().toISOString(), level, requestId };
    if (args.length === 1) {
      r.message = args[0];
      try { return JSON.stringify(r, errorFields); } catch { r.message = format(args[0]); return JSON.stringify(r); }
    }
    r.message = format(...args);
    const err = args.find((a) => a instanceof Error);
    if (err) Object.assign(r, { errorType: err.constructor?.name ?? 'UnknownError', errorMessage: err.message, stackTrace: typeof err.stack === 'string' ? err.stack.split('\n') : [] });
    return JSON.stringify(r);
  }

  /**
   * A failed init or invocation as Lambda's runtime logs it: in Text the line given; in JSON an ERROR record
   * whose message is the error itself (errorType, errorMessage, stackTrace), as console.error(err) writes it.
   * @param {unknown} err @param {string} text
   */
  function logError(err, text) {
    if (process.env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === 'JSON') console.error(err instanceof Error ? err : new Error(String(err)));
    else console.error(text);
  }

  /** @param {unknown} err @returns {SerializedError} */
  function serializeError(err) {
    if (err instanceof Error) {
      return {
        errorType: err.name === 'Error' && err.constructor?.name ? err.constructor.name : err.name,
        errorMessage: err.message,
        trace: (err.stack ?? '').split('\n').map((l) => l.trim()).filter(Boolean),
      };
    }
    return { errorType: typeof err === 'object' && err !== null ? 'Error' : typeof err, errorMessage: String(err), trace: [] };
  }

  /** @param {InitSpec} spec */
  async function init(spec) {
    const started = performance.now();
    await warming;
    try {
      for (const [k, v] of Object.entries(spec.env)) process.env[k] = v;
      patchConsole();
      // require() read NODE_PATH when this process started, before its function (and layers at /opt) was known.
      const moduleInternals = /** @type {any} */ (nodeModule);
      if (spec.env.NODE_PATH !== undefined && typeof moduleInternals._initPaths === 'function') moduleInternals._initPaths();
      // Where the runtime's own files are, as Lambda's /var/runtime.
      if (typeof __dirname === 'string') process.env.LAMBDA_RUNTIME_DIR = __dirname;
      if (/^(1|true)$/.test(process.env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA ?? '')) delete (/** @type {any} */ (globalThis)).awslambda;
      egressToken = spec.egressToken ?? null;
      process.chdir(spec.codeDir);
      fn = spec;
      if (preloaded) {
        // Restored: the module was loaded and its init run before the snapshot; only the hooks run now.
        freshEntropy();
        for (const h of hooks.afterRestore) await h();
        checkHandler(preloaded.handler);
        handler = preloaded.handler;
        send({ type: 'initDone', durationMs: performance.now() - started });
        return;
      }
      // V8's code cache for this version, shared by its instances: compile once per node.
      // (Node 20 has none: the agent passes no directory for it.)
      if (spec.compileCacheDir && typeof nodeModule.enableCompileCache === 'function') nodeModule.enableCompileCache(spec.compileCacheDir);
      const code = spec.partial || spec.recordFiles ? codeHooks(spec.codeDir, { partial: Boolean(spec.partial), record: Boolean(spec.recordFiles) }) : null;
      const mod = await import(pathToFileURL(spec.file).href);
      const candidate = mod[spec.exportName] ?? mod.default?.[spec.exportName];
      if (typeof candidate !== 'function') {
        const e = new Error(`${spec.file.slice(spec.codeDir.length + 1)} does not export a function named ${spec.exportName}`);
        e.name = 'Runtime.HandlerNotFound';
        throw e;
      }
      checkHandler(candidate);
      handler = candidate;
      const files = code?.files();
      code?.stopRecording();
      send({ type: 'initDone', durationMs: performance.now() - started, ...(files ? { files } : {}) });
      // Node writes the code cache at a clean exit, which an instance (stopped with SIGKILL) never has:
      // written once, a moment after init, so the next instance of this version compiles nothing.
      if (spec.compileCacheDir && typeof nodeModule.flushCompileCache === 'function') setTimeout(() => { try { nodeModule.flushCompileCache(); } catch { /* a cache is an optimisation */ } }, 50).unref();
    } catch (err) {
      const error = serializeError(err);
      if (err instanceof SyntaxError) error.errorType = 'Runtime.UserCodeSyntaxError';
      else if (/** @type {any} */ (err)?.code === 'ERR_MODULE_NOT_FOUND') error.errorType = 'Runtime.ImportModuleError';
      logError(err, `INIT_ERROR\t${error.errorType}: ${error.errorMessage}`);
      send({ type: 'initError', error, durationMs: performance.now() - started });
    }
  }

  let nextCallId = 0;
  /** @type {Map<number, {resolve: (v: unknown) => void, reject: (e: Error) => void}>} */
  const calls = new Map();

  /**
   * Calls the handler as Lambda's Node runtime of this major does. On Node 24 its promise (or value) is the
   * result. Before 24, as Lambda's older runtime interface: a returned promise settles the invocation;
   * otherwise the first of callback(err, result), context.succeed/fail/done does, and a handler that returned
   * without calling any of them ends with null once the event loop is empty (its value is ignored, as
   * there). callback(null, result) waits for the empty event loop too, unless the handler set
   * context.callbackWaitsForEmptyEventLoop = false; succeed/fail/done answer at once.
   * @param {Function} fn @param {unknown} event @param {any} context
   */
  function callHandler(fn, event, context) {
    if (NODE_MAJOR >= 24) return fn(event, context);
    return new Promise((resolve, reject) => {
      let finished = false;
      let waits = true;
      /** @typedef {(err?: unknown, result?: unknown) => void} Settle */
      /** @type {Settle} */
      const settle = (err, result) => (err !== undefined && err !== null ? reject(err) : resolve(result));
      /** @type {(f: Settle) => Settle} only the first of them counts */
      const first = (f) => (err, result) => { if (!finished) { finished = true; f(err, result); } };
      const done = first(settle);
      const callback = first((err, result) => {
        if ((err !== undefined && err !== null) || !waits) settle(err, result);
        else void loopEmpty().then(() => settle(null, result));
      });
      Object.defineProperty(context, 'callbackWaitsForEmptyEventLoop', { get: () => waits, set: (v) => { waits = v; }, enumerable: true, configurable: true });
      context.done = done;
      context.succeed = (/** @type {unknown} */ result) => done(null, result);
      context.fail = (/** @type {unknown} */ err) => done(err === undefined || err === null ? 'handled' : err);
      let returned;
      try {
        returned = fn(event, context, callback);
      } catch (err) {
        callback(err);
        return;
      }
      if (typeof returned?.then === 'function') returned.then(context.succeed, context.fail);
      else void loopEmpty().then(() => done(null, null));
    });
  }

  /**
   * Resolves once nothing keeps the event loop alive but the channel to the host: Lambda's "empty event
   * loop", which it learns from beforeExit, an event that never comes here (the channel is always open).
   * Node is asked which resources hold the loop with the channel unreferenced for the moment of the
   * question; a timer that holds nothing itself asks again until the answer is none.
   * @returns {Promise<void>}
   */
  function loopEmpty() {
    return new Promise((resolve) => {
      const check = () => {
        channel.unref();
        const busy = process.getActiveResourcesInfo().length > 0;
        channel.ref();
        if (busy) setTimeout(check, 5).unref();
        else resolve();
      };
      setImmediate(check);
    });
  }

  /** @param {InvokeSpec} spec */
  function makeContext(spec) {
    const f = /** @type {InitSpec} */ (fn);
    return {
      awsRequestId: spec.id,
      invocationId: spec.id,
      functionName: f.functionName,
      functionVersion: f.version,
      invokedFunctionArn: f.functionArn,
      memoryLimitInMB: String(f.memoryMb),
      logGroupName: `/aws/lambda/${f.functionName}`,
      logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME ?? `thaw/${process.pid}`,
      clientContext: spec.clientContext ? JSON.parse(Buffer.from(spec.clientContext, 'base64').toString('utf8')) : undefined,
      identity: undefined,
      /** True for a scheduled warm-up: the instance is warm now; the handler may return at once. */
      warmup: spec.warmup === true,
      /** The W3C traceparent of this invocation's handler span (also in process.env.TRACEPARENT). */
      traceparent: spec.traceparent,
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => Math.max(0, spec.deadline - Date.now()),
      /** Calls another Thaw function synchronously and resolves with its result; the platform learns the call chain. */
      invoke: (/** @type {string} */ name, /** @type {unknown} */ payload) => new Promise((resolve, reject) => {
        const callId = ++nextCallId;
        calls.set(callId, { resolve, reject });
        send({ type: 'call', callId, invocationId: spec.id, functionName: name, payload: JSON.stringify(payload ?? null) });
      }),
    };
  }

  // Response streaming (as protocol.ts's STREAM_CHUNK_BYTES and STREAM_WINDOW_BYTES).
  const STREAM_CHUNK_BYTES = 256 * 1024;
  const STREAM_WINDOW_BYTES = 1024 * 1024;
  /** The response streams in flight, by invocation id: the host's acknowledgements and aborts reach them. */
  /** @type {Map<string, { ack: (bytes: number) => void, abort: (error: SerializedError) => void }>} */
  const streams = new Map();

  const streamingError = (/** @type {string} */ message) => Object.assign(new Error(message), { name: 'Runtime.InvalidStreamingOperation' });

  /**
   * A streaming handler's response stream, as Lambda's: a Writable with setContentType, whose first write is
   * preceded by what HttpResponseStream.from left in _onBeforeFirstWrite. Its bytes go to the host in chunks,
   * with at most STREAM_WINDOW_BYTES sent and not acknowledged: past that a write's callback waits for the
   * host, so write() returns false and a pipeline pauses while the client reads slowly.
   * @param {string} id @param {number | undefined} highWaterMark
   */
  function responseStream(id, highWaterMark) {
    const { Writable } = require('node:stream');
    let contentType = 'application/octet-stream';
    let started = false;
    let wrote = false;
    let unacked = 0;
    /** @type {{ data: Buffer, at: number, callback: (err?: Error | null) => void } | null} the write being sent */
    let current = null;
    const start = () => {
      if (started) return;
      started = true;
      send({ type: 'streamStart', id, contentType });
    };
    const pump = () => {
      if (!current) return;
      while (current.at < current.data.length && unacked < STREAM_WINDOW_BYTES) {
        const piece = current.data.subarray(current.at, current.at + STREAM_CHUNK_BYTES);
        send({ type: 'chunk', id, data: piece.toString('base64') });
        current.at += piece.length;
        unacked += piece.length;
      }
      if (current.at < current.data.length) return;
      const { callback } = current;
      current = null;
      callback();
    };
    const stream = /** @type {any} */ (new Writable({
      ...(highWaterMark !== undefined && highWaterMark >= 0 ? { highWaterMark } : {}),
      write(/** @type {Buffer} */ data, _encoding, callback) {
        start();
        current = { data, at: 0, callback };
        pump();
      },
      final(callback) { start(); callback(); },
      destroy(err, callback) {
        // The write being sent fails too: its callback is the handler's, which may be waiting on it.
        const pending = current;
        current = null;
        streams.delete(id);
        pending?.callback(err);
        callback(err);
      },
    }));
    // Lambda's runtime listens too: a write after the stream failed is the handler's error, not the process's.
    stream.on('error', () => {});
    const write = stream.write.bind(stream);
    const end = stream.end.bind(stream);
    const beforeFirstWrite = () => {
      if (wrote) return;
      wrote = true;
      if (typeof stream._onBeforeFirstWrite === 'function') stream._onBeforeFirstWrite((/** @type {any} */ c) => write(c));
    };
    stream.setContentType = (/** @type {unknown} */ type) => {
      if (wrote) throw streamingError('Cannot set content-type, too late.');
      if (typeof type !== 'string' || !/^[\x20-\x7e]{1,256}$/.test(type)) throw new TypeError('the content type must be 1 to 256 printable ASCII characters');
      contentType = type;
    };
    // As on Lambda, anything but a string or bytes is written as its JSON.
    stream.write = (/** @type {any} */ chunk, /** @type {any[]} */ ...rest) => {
      if (typeof chunk !== 'string' && !(chunk instanceof Uint8Array)) chunk = JSON.stringify(chunk);
      beforeFirstWrite();
      return write(chunk, ...rest);
    };
    // The prelude goes out even when the handler only ends the stream: its status and headers still apply.
    stream.end = (/** @type {any} */ chunk, /** @type {any} */ encoding, /** @type {any} */ callback) => {
      if (typeof chunk === 'function') [chunk, callback] = [undefined, chunk];
      else if (typeof encoding === 'function') [encoding, callback] = [undefined, encoding];
      if (chunk !== undefined && chunk !== null) stream.write(chunk, encoding);
      beforeFirstWrite();
      return end(callback);
    };
    streams.set(id, {
      ack: (bytes) => { unacked -= bytes; pump(); },
      abort: (error) => { stream.destroy(Object.assign(new Error(error.errorMessage), { name: error.errorType })); },
    });
    return stream;
  }

  /**
   * Runs a streaming handler as Lambda's runtime does: (event, responseStream, context), a promise required,
   * its value ignored (with a warning), done once the stream has finished.
   * @param {InvokeSpec} spec @param {any} fn @param {unknown} event
   */
  async function invokeStreaming(spec, fn, event) {
    const stream = responseStream(spec.id, fn[HANDLER_HIGHWATERMARK]);
    try {
      const returned = fn(event, stream, makeContext(spec));
      if (typeof returned?.then !== 'function') throw streamingError('Streaming does not support non-async handlers.');
      if ((await returned) !== undefined) console.warn('Streaming handlers ignore return values.');
      await require('node:stream/promises').finished(stream);
    } finally {
      streams.delete(spec.id);
    }
  }

  /** @param {InvokeSpec} spec */
  async function invoke(spec) {
    inFlight.add(spec.id);
    await current.run(spec.id, async () => {
      try {
        if (!handler) throw Object.assign(new Error('the runtime was invoked before init'), { name: 'Runtime.NotInitialized' });
        const event = JSON.parse(spec.payload);
        // As Lambda's Node runtime does: the invocation's trace header in the environment while it runs.
        if (spec.traceId) process.env._X_AMZN_TRACE_ID = spec.traceId;
        else delete process.env._X_AMZN_TRACE_ID;
        // The W3C equivalent where OpenTelemetry's environment carrier looks for it: a tracer in the function
        // that extracts it parents its spans on the invocation's handler span.
        if (spec.traceparent) process.env.TRACEPARENT = spec.traceparent;
        else delete process.env.TRACEPARENT;
        const value = /** @type {any} */ (handler)[HANDLER_STREAMING] === 'response' ? await invokeStreaming(spec, handler, event) : await callHandler(handler, event, makeContext(spec));
        let payload;
        try {
          payload = value === undefined ? 'null' : JSON.stringify(value);
        } catch (err) {
          throw Object.assign(new Error(`the handler's return value is not JSON-serializable: ${/** @type {Error} */ (err).message}`), { name: 'Runtime.MarshalError' });
        }
        inFlight.delete(spec.id);
        send({ type: 'result', id: spec.id, ok: true, payload: payload ?? 'null' });
      } catch (err) {
        inFlight.delete(spec.id);
        const error = serializeError(err);
        logError(err, `Invoke Error \t${JSON.stringify(error)}`);
        send({ type: 'result', id: spec.id, ok: false, error });
      }
    });
  }

  /** Reports the failure to the host for every invocation in flight, then exits: the host replaces us. */
  function fatal(/** @type {unknown} */ err, /** @type {string} */ errorType) {
    const error = serializeError(err);
    error.errorType = errorType;
    process.stderr.write(`${new Date().toISOString()}\t${current.getStore() ?? soleInvocation() ?? 'undefined'}\tERROR\t${errorType}: ${error.errorMessage}\n`);
    send({ type: 'fatal', invocationIds: [...inFlight], error }, () => process.exit(129));
    setTimeout(() => process.exit(129), 500).unref();
  }
  process.on('uncaughtException', (err) => fatal(err, 'Runtime.UncaughtException'));
  process.on('unhandledRejection', (err) => fatal(err, 'Runtime.UnhandledPromiseRejection'));

  /** @param {HostMessage} msg */
  const onMessage = (msg) => {
    switch (msg.type) {
      case 'init': void init(msg.spec); break;
      case 'invoke': void invoke(msg.spec); break;
      case 'ping': send({ type: 'pong', id: msg.id }); break;
      case 'streamAck': streams.get(msg.id)?.ack(msg.bytes); break;
      case 'streamAbort': streams.get(msg.id)?.abort(msg.error); break;
      case 'prepareFreeze':
        // Shrink the heap before the process is stopped: a frozen instance keeps its memory.
        if (gc === undefined) gc = collector();
        gc?.();
        send({ type: 'freezeReady', heapUsedBytes: process.memoryUsage().heapUsed });
        break;
      case 'callResult': {
        const pending = calls.get(msg.callId);
        if (!pending) break;
        calls.delete(msg.callId);
        if (msg.ok) pending.resolve(JSON.parse(msg.payload));
        else pending.reject(Object.assign(new Error(msg.error.errorMessage), { name: msg.error.errorType }));
        break;
      }
    }
  };
  /** @type {Buffer[]} */
  let partial = [];
  channel.on('data', (/** @type {Buffer} */ chunk) => {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      const line = Buffer.concat([...partial, chunk.subarray(start, nl)]);
      partial = [];
      start = nl + 1;
      // The host's messages are well-formed; its own side checks ours.
      if (line.length) onMessage(JSON.parse(line.toString('utf8')));
    }
    if (start < chunk.length) partial.push(chunk.subarray(start));
  });
  // The host owns our lifetime: if it goes away, so do we.
  channel.on('end', () => process.exit(0));
  channel.on('error', () => process.exit(0));

  send({ type: 'ready', pid: process.pid, restored: preloaded !== null });
  // While nobody waits (a pooled runtime idles; a cold one waits for its code): bring up what the first
  // init and invocation would otherwise pay for: the ES module loader, console formatting, the log path.
  if (!preloaded) {
    setImmediate(() => {
      const tiny = 'data:text/javascript,export default 1';
      warming = import(tiny).then(() => { format('%s %j', 'warm', { up: true }); }, () => {});
    });
  }
}

module.exports = { main, runBeforeSnapshot, checkHandler, hooks };

if (require.main === module) main(null);
