// format.js: number formatting and small DOM helpers shared by the views.

export function formatTime(ms) {
  return ms < 1 ? `${(ms * 1000).toFixed(1)} µs` : `${ms.toFixed(2)} ms`;
}

/** n significant digits without trailing zeros; exponent form for very large or small values. */
export function sig(value, digits = 4) {
  if (value === 0 || !Number.isFinite(value)) return String(value);
  const a = Math.abs(value);
  if (a >= 1e6 || a < 1e-4) return value.toExponential(digits - 1).replace('e+', 'e');
  return String(Number(value.toPrecision(digits)));
}

export function fixed(value, digits = 4) {
  return (value < 0 ? '−' : '') + Math.abs(value).toFixed(digits);
}

/**
 * Fills a data table in `details > .table-wrap` from a header row and rows of cells, only when
 * the details element is open (and again when it opens).
 */
export function dataTable(details, caption) {
  const wrap = details.querySelector('.table-wrap');
  let pending = null;
  const fill = () => {
    if (!pending || !details.open) return;
    const { head, rows } = pending();
    pending = null;
    const table = document.createElement('table');
    const cap = table.createCaption();
    cap.textContent = caption;
    const tr = table.createTHead().insertRow();
    for (const h of head) {
      const th = document.createElement('th');
      th.scope = 'col';
      th.textContent = h;
      tr.append(th);
    }
    const body = table.createTBody();
    for (const row of rows) {
      const r = body.insertRow();
      row.forEach((cell, i) => {
        const c = document.createElement(i === 0 ? 'th' : 'td');
        if (i === 0) c.scope = 'row';
        c.textContent = cell;
        r.append(c);
      });
    }
    wrap.replaceChildren(table);
  };
  details.addEventListener('toggle', fill);
  return (producer) => {
    pending = producer;
    fill();
  };
}

/** A canvas sized to its CSS box at the device pixel ratio; returns its 2D context and size. */
const widths = new WeakMap();  // canvas -> CSS width, measured once per resize (no forced layout per frame)
export let sizeGeneration = 0;
export function forgetSizes() {
  sizeGeneration++;
  cachedColours = null;
  for (const canvas of document.querySelectorAll('canvas')) widths.delete(canvas);
}
export function fitCanvas(canvas, aspect) {
  if (!widths.has(canvas)) widths.set(canvas, canvas.clientWidth || canvas.parentElement.clientWidth);
  const width = Math.max(200, widths.get(canvas));
  const height = Math.round(width * aspect);
  const ratio = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  canvas.style.height = `${height}px`;
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  return { g, width, height };
}

/** The page's colours (Okabe–Ito, colour-blind safe), read from CSS so dark mode applies. */
let cachedColours = null;
export function colours() {
  if (cachedColours) return cachedColours;
  const css = getComputedStyle(document.documentElement);
  const v = (name) => css.getPropertyValue(name).trim();
  cachedColours = {
    q: v('--q'), k: v('--k'), fg: v('--fg'), muted: v('--muted'), line: v('--line'),
    avg: v('--avg'), train: v('--train'), marker: v('--marker'), unseen: v('--unseen'), panel: v('--panel'),
  };
  return cachedColours;
}
