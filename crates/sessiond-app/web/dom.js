// Building DOM nodes without innerHTML: user data only ever becomes text nodes, and the
// page's Trusted Types policy ('none') forbids HTML string sinks anyway.

/**
 * h('button', { class: 'button', onclick: fn }, 'Text', childNode)
 * Attributes whose value is false/null/undefined are left out; `on*` become listeners.
 */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

function setAttributes(node, attrs) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      node.addEventListener(name.slice(2), value);
    } else if (value === true) {
      node.setAttribute(name, '');
    } else {
      node.setAttribute(name, String(value));
    }
  }
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const SVG = 'http://www.w3.org/2000/svg';

/** Outline icons, 24×24, drawn with the current text colour. */
const ICONS = {
  phone: [['rect', { x: 7, y: 2.5, width: 10, height: 19, rx: 2 }], ['path', { d: 'M11 18.5h2' }]],
  tablet: [['rect', { x: 4, y: 3, width: 16, height: 18, rx: 2 }], ['path', { d: 'M11 18h2' }]],
  computer: [
    ['rect', { x: 3, y: 4, width: 18, height: 12, rx: 1.5 }],
    ['path', { d: 'M8 20h8M12 16v4' }],
  ],
  other: [
    ['circle', { cx: 12, cy: 12, r: 9 }],
    ['path', { d: 'M9.5 9.5a2.5 2.5 0 1 1 3.5 2.3c-.6.3-1 .8-1 1.5v.7M12 17h.01' }],
  ],
  refresh: [['path', { d: 'M20 11a8 8 0 0 0-14.6-4.5L4 8M4 4v4h4M4 13a8 8 0 0 0 14.6 4.5L20 16M20 20v-4h-4' }]],
};

/** An icon for `name` (a device kind or a UI glyph); decorative unless `label` is given. */
export function icon(name, label) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', `icon icon-${name in ICONS ? name : 'other'}`);
  if (label) {
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', label);
  } else {
    svg.setAttribute('aria-hidden', 'true');
  }
  svg.setAttribute('focusable', 'false');
  for (const [tag, attrs] of ICONS[name] ?? ICONS.other) {
    const shape = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs)) shape.setAttribute(key, String(value));
    svg.append(shape);
  }
  return svg;
}

/** Replaces the children of `node`. */
export function mount(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

/**
 * Shows the list `rows` (an element with an id) in `node`: reconciled into the list of that id
 * already shown there, so that focus and scroll stay where they were, or mounted in place of
 * whatever `node` shows (an empty state, a spinner).
 */
export function showList(node, rows) {
  const shown = node.querySelector(`:scope > #${rows.id}`);
  if (shown) reconcile(shown, rows);
  else mount(node, rows);
}

/**
 * Makes `node`'s children those of `next` (a detached element), keeping every child whose
 * `data-key` and content did not change: the nodes a user is on (the focus, a screen
 * reader's place) stay put when a periodic reload brings nothing new for them. Children
 * without a key, or whose content changed, are replaced.
 */
export function reconcile(node, next) {
  const kept = new Map();
  for (const child of node.children) {
    if (child.dataset.key) kept.set(child.dataset.key, child);
  }
  const wanted = [...next.children].map((child) => {
    const old = child.dataset.key ? kept.get(child.dataset.key) : undefined;
    return old?.isEqualNode(child) ? old : child;
  });
  const keep = new Set(wanted);
  for (const child of [...node.children]) {
    if (!keep.has(child)) child.remove();
  }
  // Insert in order; a child already in place is not moved (moving would drop its focus).
  let at = node.firstElementChild;
  for (const child of wanted) {
    if (child === at) {
      at = at.nextElementSibling;
    } else {
      node.insertBefore(child, at);
    }
  }
}
