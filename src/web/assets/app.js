// The dashboard's entry: signs in when the node has access keys, then draws every panel and redraws them
// every few seconds (and on Refresh). A failed panel says why in the error line and leaves the others be.
import { AUTH_CODES, ApiError, api, credentials, signIn, signOut } from './api.js';
import { byId } from './dom.js';
import { renderDecisions, renderFunctions, renderInstances, renderInvocations, renderNode, renderTimeline } from './panels.js';
import { setUpSimulator } from './sim.js';

const REFRESH_MS = 3000;
let timer = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined);

/** Shows the sign-in form (with why, if a key was refused) instead of the panels. */
function askToSignIn(message = '') {
  clearTimeout(timer);
  byId('main').hidden = true;
  byId('login').hidden = false;
  byId('logout').hidden = true;
  byId('signed-in').hidden = true;
  byId('login-error').textContent = message;
}

async function refresh() {
  clearTimeout(timer);
  const errors = /** @type {string[]} */ ([]);
  const run = async (/** @type {string} */ what, /** @type {() => Promise<void>} */ draw) => {
    try { await draw(); } catch (err) {
      if (err instanceof ApiError && AUTH_CODES.has(err.code)) throw err;
      errors.push(`${what}: ${/** @type {Error} */ (err).message}`);
    }
  };
  try {
    const invocations = api('GET', '/thaw/v1/invocations?limit=1000').then((r) => r.invocations);
    await Promise.all([
      run('node', renderNode), run('functions', renderFunctions), run('instances', renderInstances), run('decisions', renderDecisions),
      run('invocations', async () => { const list = await invocations; renderInvocations(list); renderTimeline(list); }),
    ]);
  } catch (err) {
    signOut();
    askToSignIn(`Signed out: ${/** @type {Error} */ (err).message}`);
    return;
  }
  byId('error').textContent = errors.join('\n');
  timer = setTimeout(() => { void refresh(); }, REFRESH_MS);
}

/** Shows the panels; false (and the sign-in form) when the node wants a signature this page does not have. */
async function enter() {
  try {
    await api('GET', '/thaw/v1/node');
  } catch (err) {
    if (err instanceof ApiError && AUTH_CODES.has(err.code)) {
      const hadKey = credentials() !== null;
      signOut();
      askToSignIn(hadKey ? `The key was refused: ${err.message}` : '');
      return false;
    }
    throw err;
  }
  byId('login').hidden = true;
  byId('main').hidden = false;
  const c = credentials();
  byId('signed-in').hidden = c === null;
  byId('signed-in').textContent = c ? `signed in as ${c.accessKeyId}` : '';
  byId('logout').hidden = c === null;
  await refresh();
  return true;
}

function main() {
  setUpSimulator();
  byId('refresh').addEventListener('click', () => { void refresh(); });
  byId('logout').addEventListener('click', () => { signOut(); askToSignIn(); });
  byId('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = /** @type {HTMLInputElement} */ (byId('login-key')).value.trim();
    const secret = /** @type {HTMLInputElement} */ (byId('login-secret')).value;
    signIn({ accessKeyId: id, secretAccessKey: secret });
    /** @type {HTMLInputElement} */ (byId('login-secret')).value = '';
    void enter().catch((err) => { byId('login-error').textContent = err.message; });
  });
  void enter().catch((err) => { byId('main').hidden = false; byId('error').textContent = err.message; });
}

main();
