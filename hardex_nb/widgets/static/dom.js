/** DOM helpers every hardex_nb widget shares (bundled into each widget's module). */

export const SVG = "http://www.w3.org/2000/svg";

/**
 * An HTML element: `on<event>` attributes become listeners; null, undefined and false
 * attributes and children are left out.
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...(Node|string|null|undefined)} children
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

/**
 * An SVG element with its attributes.
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 */
export function s(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}
