// Charts as plain SVG built with DOM calls: no library to vendor and keep up to date, no
// inline style (the Content-Security-Policy forbids it). Shapes carry classes only, so the
// style sheet gives them their colours in both schemes.

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An axis from 0 to `top` in whole steps (counts), about four of them, covering `max`. */
export function scale(max) {
  if (!(max > 0)) return { top: 4, step: 1 };
  const rough = max / 4;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rough));
  return { top: Math.ceil(max / step) * step, step };
}

/**
 * Stacked columns, one per entry of `columns` ({ short, long }: the axis label and the
 * tooltip's), `series` ({ name, className, values }) stacked bottom up in their order.
 * Every `labelEvery`-th column is labelled on the axis. `label` is what a screen reader
 * hears (the page shows the same numbers in a table).
 */
export function columnChart({ width, height = 200, columns, series, labelEvery = 3, label }) {
  const margin = { top: 10, right: 4, bottom: 26, left: 36 };
  const plotWidth = Math.max(24, width - margin.left - margin.right);
  const plotHeight = height - margin.top - margin.bottom;
  const totals = columns.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const { top, step } = scale(Math.max(0, ...totals));
  const y = (value) => margin.top + plotHeight - (value / top) * plotHeight;
  const band = plotWidth / columns.length;
  const barWidth = Math.max(2, Math.min(band - 2, band * 0.72));
  const chart = svg('svg', {
    class: 'chart',
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': label,
  });

  const grid = svg('g', { class: 'chart-grid', 'aria-hidden': 'true' });
  for (let value = 0; value <= top; value += step) {
    const at = Math.round(y(value)) + 0.5;
    grid.append(
      svg('line', { class: value === 0 ? 'chart-axis' : 'chart-rule', x1: margin.left, x2: width - margin.right, y1: at, y2: at }),
      svg('text', { class: 'chart-tick', x: margin.left - 6, y: at, 'text-anchor': 'end', 'dominant-baseline': 'middle' }, value),
    );
  }
  chart.append(grid);

  columns.forEach((column, i) => {
    const left = margin.left + i * band;
    const group = svg('g', { class: 'chart-column' });
    const parts = series.map((s) => `${s.values[i] ?? 0} ${s.name.toLowerCase()}`).join(', ');
    group.append(svg('title', {}, `${column.long}: ${parts}`));
    // The whole column's height answers a hover, also where there is no bar.
    group.append(svg('rect', { class: 'chart-hit', x: left, y: margin.top, width: band, height: plotHeight }));
    let stacked = 0;
    for (const s of series) {
      const value = s.values[i] ?? 0;
      if (value <= 0) continue;
      const from = y(stacked);
      const to = y(stacked + value);
      group.append(svg('rect', { class: `chart-bar ${s.className}`, x: left + (band - barWidth) / 2, y: to, width: barWidth, height: Math.max(1, from - to) }));
      stacked += value;
    }
    if (i % labelEvery === 0) {
      group.append(svg('text', { class: 'chart-tick', x: left + band / 2, y: height - 8, 'text-anchor': 'middle' }, column.short));
    }
    chart.append(group);
  });
  return chart;
}

/**
 * Horizontal bars, one row per entry of `rows` ({ name, value, className }): the name at
 * the left, the bar, its number after it.
 */
export function barList({ width, rows, label }) {
  const rowHeight = 34;
  const nameWidth = Math.min(150, Math.round(width * 0.38));
  const numberWidth = 44;
  const room = Math.max(20, width - nameWidth - numberWidth);
  const max = Math.max(1, ...rows.map((row) => row.value));
  const height = rows.length * rowHeight;
  const chart = svg('svg', {
    class: 'chart chart-bars',
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': label,
  });
  rows.forEach((row, i) => {
    const middle = i * rowHeight + rowHeight / 2;
    const length = row.value > 0 ? Math.max(2, (row.value / max) * room) : 0;
    chart.append(
      svg('text', { class: 'chart-name', x: 0, y: middle, 'dominant-baseline': 'middle' }, row.name),
      svg('rect', { class: 'chart-track', x: nameWidth, y: middle - 9, width: room, height: 18, rx: 3 }),
      length ? svg('rect', { class: `chart-bar ${row.className}`, x: nameWidth, y: middle - 9, width: length, height: 18, rx: 3 }) : null,
      svg('text', { class: 'chart-value', x: nameWidth + length + 6, y: middle, 'dominant-baseline': 'middle' }, row.value),
    );
  });
  return chart;
}

/**
 * Draws `draw(width)` into `container` now, and again whenever the container's width
 * changes (a rotated phone, a resized window): the SVG is drawn at its real pixel size, so
 * that its text stays readable at 390 px instead of being scaled down. Returns a function
 * that stops watching.
 */
export function responsive(container, draw) {
  let drawn = -1;
  let frame = 0;
  const redraw = () => {
    frame = 0;
    const width = Math.floor(container.clientWidth);
    if (width <= 0 || width === drawn) return;
    drawn = width;
    container.replaceChildren(draw(width));
  };
  // Redrawn in the next frame, not inside the observer's callback: no resize loop.
  const observer = new ResizeObserver(() => {
    frame ||= requestAnimationFrame(redraw);
  });
  observer.observe(container);
  redraw();
  return () => {
    observer.disconnect();
    cancelAnimationFrame(frame);
  };
}
