// Callback handlers at deploy: Lambda's Node.js 24 runtime refuses a handler declaring a third parameter
// (event, context, callback) at init with Runtime.CallbackHandlerDeprecated. Thaw's runtime does the same
// (bootstrap.cjs checkHandler), and this file finds the common cases before anything runs: the handler
// export written as a function in the handler file itself. What it cannot see statically (a handler made by
// a wrapper, a bundler's indirections) is left to the runtime's check at init. Imports src/core and node built-ins.
import { readFile } from 'node:fs/promises';
import { ThawError } from '../core/errors.ts';

const ID = '[A-Za-z_$][\\w$]*';

/**
 * The declared length (as Function.length counts it: parameters before the first default or rest) of the
 * function the source exports under `name`, or null when it is not written out plainly in this file.
 */
export function exportedArity(source: string, name: string): number | null {
  const code = blankComments(source);
  const esc = name.replace(/\$/g, '\\$');
  // Only a declaration that is the export by its own syntax, at the start of a line: a function of the same
  // name elsewhere (a bundled library's `function handler(req, res, next)`, hoisted by the bundler to the
  // top level) is not the export, and a bundle's exports go through its own helpers: left to the runtime.
  const starts = [
    // export [async] function name(
    new RegExp(`^export\\s+(?:async\\s+)?function\\s*\\*?\\s*${esc}\\s*\\(`, 'm'),
    // export const name = [async] (   /   exports.name = [async] function [id] (   /   module.exports.name = ...
    new RegExp(`^(?:export\\s+(?:const|let|var)\\s+|(?:module\\.)?exports\\.)${esc}\\s*=\\s*(?:async\\s*)?(?:function\\s*\\*?\\s*(?:${ID})?\\s*)?\\(`, 'm'),
  ];
  for (const re of starts) {
    const m = re.exec(code);
    if (m) return paramLength(code, m.index + m[0].length);
  }
  // export const name = async event => ...: one parameter.
  return new RegExp(`^(?:export\\s+(?:const|let|var)\\s+|(?:module\\.)?exports\\.)${esc}\\s*=\\s*(?:async\\s+)?${ID}\\s*=>`, 'm').test(code) ? 1 : null;
}

/** Counts parameters from just after '(' as Function.length does; null when the list is not plain. */
function paramLength(code: string, from: number): number | null {
  let depth = 0;
  let count = 0;
  let sawToken = false;
  for (let i = from; i < code.length; i++) {
    const c = code[i];
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') {
      if (depth === 0) return sawToken ? count + 1 : count;
      depth--;
    } else if (depth === 0 && c === ',') { count++; sawToken = false; continue; }
    else if (depth === 0 && c === '=') return count; // a default: it and what follows do not count
    else if (depth === 0 && code.startsWith('...', i)) return count; // a rest parameter does not count
    else if (c === '"' || c === "'" || c === '`') return null;
    if (!/\s/.test(c)) sawToken = true;
  }
  return null;
}

/** Comments become spaces (offsets kept) so a commented-out declaration is not read. Strings are left. */
function blankComments(s: string): string {
  return s.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, (m) => m.replace(/[^\n]/g, ' '));
}

/**
 * Refuses a callback handler for a runtime that does not call handlers back (Node.js 24 and later). As
 * Lambda's runtime tells one, by its declared length alone: an async function of (event, context,
 * callback) is refused too.
 */
export async function checkNotCallbackHandler(file: string, exportName: string, runtime: string): Promise<void> {
  const major = Number(/^nodejs(\d+)/.exec(runtime)?.[1] ?? 0);
  if (major < 24) return;
  const arity = exportedArity(await readFile(file, 'utf8'), exportName);
  if (arity === null || arity < 3) return;
  throw new ThawError('THAW_E_CALLBACK_HANDLER', `Runtime.CallbackHandlerDeprecated: ${exportName} declares ${arity} parameters (event, context, callback); ${runtime} does not call handlers back, as on Lambda. Make it an async function of (event, context) that returns its result, or use runtime nodejs22.x`);
}
