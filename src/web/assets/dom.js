// Building the page's nodes: every piece of data goes in as text (textContent, attribute values), never as
// markup, so a function name, a description or a log line is shown as it is and cannot become an element.

/**
 * An HTML element with attributes and children (strings become text nodes).
 * @param {string} tag
 * @param {Record<string, string | number | boolean | null | undefined>} [attrs]
 * @param {...(Node | string | number | null | undefined)} children
 * @returns {HTMLElement}
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  for (const c of children) if (c !== null && c !== undefined) node.append(typeof c === 'object' ? c : String(c));
  return node;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * An SVG element; `text` becomes its text content.
 * @param {string} tag
 * @param {Record<string, string | number | boolean | null | undefined>} [attrs]
 * @param {string} [text]
 * @returns {SVGElement}
 */
export function svg(tag, attrs = {}, text) {
  const node = /** @type {SVGElement} */ (document.createElementNS(SVG_NS, tag));
  setAttrs(node, attrs);
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * @param {Element} node
 * @param {Record<string, string | number | boolean | null | undefined>} attrs
 */
function setAttrs(node, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    // Event handlers are attached with addEventListener only; an on* attribute here would be a bug.
    if (/^on/i.test(k)) throw new Error(`refusing to set the attribute ${k}`);
    if (v === null || v === undefined || v === false) continue;
    node.setAttribute(k, v === true ? '' : String(v));
  }
}

/**
 * The element with this id (the page's own markup: missing one is a bug, not data).
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node;
}

/**
 * Replaces a node's children.
 * @param {Element} node
 * @param {...(Node | string)} children
 */
export function fill(node, ...children) {
  node.replaceChildren(...children);
}

/** @param {number} ms */
export const ms = (ms) => ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 100 ? `${Math.round(ms)} ms` : `${ms.toFixed(1)} ms`;

/** @param {number} bytes */
export const mb = (bytes) => `${(bytes / 1048576).toFixed(0)} MB`;

/** @param {number} x */
export const pct = (x) => `${(x * 100).toFixed(1)}%`;

/** @param {number} epochMs */
export const clock = (epochMs) => new Date(epochMs).toLocaleTimeString();
