/**
 * The `log --html` page: markup, styles and script, all inline, with a Content-Security-Policy that
 * forbids every request, so the file shows the same thing on a machine with no network.
 */
import type { LogPageData } from './htmlLog.js';

const escapeHtml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** JSON that is safe inside a <script> element: no `</script>`, no `<!--`. */
const scriptJson = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');

const STYLE = String.raw`
:root { --ink: #0f172a; --muted: #64748b; --line: #cbd5e1; --panel: #f8fafc; --accent: #d97706; --accent-soft: #fef3c7; --current: #fbbf24; }
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; }
body { font: 14px/1.4 system-ui, "DejaVu Sans", "Liberation Sans", sans-serif; color: var(--ink); display: grid; grid-template-rows: auto minmax(0, 1fr) auto minmax(110px, 26vh); }
header { display: flex; align-items: baseline; gap: 16px; padding: 8px 16px; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { font-size: 16px; margin: 0; }
header p { margin: 0; color: var(--muted); }
main { display: grid; grid-template-columns: minmax(0, 1fr) 360px; min-height: 0; }
#chart { overflow: auto; position: relative; border-right: 1px solid var(--line); }
#chart svg { display: block; }
#chart.fit svg { width: 100%; height: auto; max-height: 100%; }
#chart-tools { position: sticky; top: 0; left: 0; z-index: 1; padding: 6px; display: flex; gap: 6px; width: max-content; }
.statechart { font-family: "DejaVu Sans Mono", ui-monospace, monospace; }
.state > rect { fill: #fff; stroke: #94a3b8; stroke-width: 1; }
.state.compound > rect { fill: #f1f5f9; }
.state > text { font-size: 13px; fill: var(--ink); }
.state.compound > text { font-weight: bold; }
.state.active > rect { fill: var(--accent-soft); stroke: var(--accent); stroke-width: 2.5; }
.state.current > rect { fill: var(--current); stroke: var(--accent); stroke-width: 3; }
.transition { fill: none; stroke: #64748b; stroke-width: 1; marker-end: url(#arrow); }
.transition.taken { stroke: var(--accent); stroke-width: 3; }
marker path { fill: #64748b; }
.event { font-size: 10px; fill: #475569; }
.initial { fill: var(--ink); }
aside { display: flex; flex-direction: column; min-height: 0; padding: 10px 12px; gap: 8px; }
.controls { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
button { font: inherit; padding: 3px 9px; border: 1px solid var(--line); border-radius: 6px; background: #fff; cursor: pointer; }
button:hover { border-color: var(--accent); }
button:disabled { opacity: 0.4; cursor: default; }
#position { font-variant-numeric: tabular-nums; color: var(--muted); }
dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; font-family: "DejaVu Sans Mono", ui-monospace, monospace; font-size: 12.5px; overflow-wrap: anywhere; }
#summary { margin: 0; }
#payload { flex: 1; min-height: 60px; margin: 0; overflow: auto; padding: 8px; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; font: 12px/1.35 "DejaVu Sans Mono", ui-monospace, monospace; white-space: pre-wrap; }
.keys { color: var(--muted); font-size: 12px; margin: 0; }
#timeline { border-top: 1px solid var(--line); padding: 6px 16px 2px; }
#timeline canvas { display: block; width: 100%; height: 46px; cursor: pointer; }
#timeline .ends { display: flex; justify-content: space-between; color: var(--muted); font-size: 12px; }
#rows { overflow: auto; position: relative; border-top: 1px solid var(--line); font: 12.5px/22px "DejaVu Sans Mono", ui-monospace, monospace; }
#rows .row { position: absolute; left: 0; right: 0; height: 22px; display: grid; grid-template-columns: 70px 220px 110px 230px 1fr; gap: 10px; padding: 0 16px; cursor: pointer; white-space: nowrap; }
#rows .row > span { overflow: hidden; text-overflow: ellipsis; }
#rows .row:hover { background: #f1f5f9; }
#rows .row.selected { background: var(--accent-soft); }
.session::before { content: ""; display: inline-block; width: 8px; height: 8px; border-radius: 50%; margin-right: 6px; background: var(--dot, #94a3b8); }
`;

/** The page's behaviour. Plain ES2020 with no template literals, so it can sit in this string as is. */
const SCRIPT = String.raw`
const data = JSON.parse(document.getElementById('log-data').textContent);
const records = data.records;
const total = records.length;
const ROW = 22;
const $ = (id) => document.getElementById(id);
const states = Array.from(document.querySelectorAll('#chart .state'));
const arrows = Array.from(document.querySelectorAll('#chart .transition[data-from]'));
const sessionColor = (index) => index < 0 ? '#94a3b8' : 'hsl(' + ((index * 137) % 360) + ', 65%, 45%)';
const sessionName = (index) => index < 0 ? '-' : data.sessions[index];
let current = -1;

function leaves(active) {
  return active.filter((id) => !active.some((other) => other.startsWith(id + '.')));
}

function go(index) {
  if (total === 0) return;
  index = Math.max(0, Math.min(total - 1, index));
  const record = records[index];
  const active = data.activeSets[record[4]];
  const innermost = leaves(active);
  for (const node of states) {
    const id = node.getAttribute('data-state');
    node.classList.toggle('active', active.includes(id));
    node.classList.toggle('current', innermost.includes(id));
  }
  // The arrow the chart took into this record's states: left its source, entered its target.
  const before = index > 0 ? data.activeSets[records[index - 1][4]] : [];
  for (const arrow of arrows) {
    const from = arrow.getAttribute('data-from');
    const to = arrow.getAttribute('data-to');
    arrow.classList.toggle('taken', before.includes(from) && !active.includes(from) && active.includes(to) && !before.includes(to));
  }
  current = index;
  $('position').textContent = (index + 1) + ' / ' + total;
  $('seq').textContent = String(record[0]);
  $('time').textContent = record[1];
  $('session').textContent = sessionName(record[2]);
  $('type').textContent = data.types[record[3]];
  $('state').textContent = innermost.join(', ') || '(not started)';
  $('summary').textContent = record[5];
  $('payload').textContent = record[6];
  $('first').disabled = $('prev').disabled = $('prev-change').disabled = index === 0;
  $('last').disabled = $('next').disabled = $('next-change').disabled = index === total - 1;
  document.body.setAttribute('data-step', String(index));
  if (!$('chart').classList.contains('fit')) {
    const target = document.querySelector('#chart .state.current');
    if (target) target.scrollIntoView({ block: 'center', inline: 'center' });
  }
  revealRow(index);
  renderRows();
  drawTimeline();
}

/** The next record, forwards or backwards, after which other states are active. */
function change(direction) {
  const from = records[current][4];
  let index = current + direction;
  while (index > 0 && index < total - 1 && records[index][4] === from) index += direction;
  return index;
}

// Event list: only the rows in view exist, so a log of any length scrolls smoothly.
const list = $('rows');
const spacer = document.createElement('div');
spacer.style.height = (total * ROW) + 'px';
list.appendChild(spacer);
function renderRows() {
  const first = Math.max(0, Math.floor(list.scrollTop / ROW) - 5);
  const last = Math.min(total, first + Math.ceil(list.clientHeight / ROW) + 10);
  const rows = [];
  for (let index = first; index < last; index++) {
    const record = records[index];
    const row = document.createElement('div');
    row.className = 'row' + (index === current ? ' selected' : '');
    row.style.top = (index * ROW) + 'px';
    row.dataset.index = String(index);
    const cells = [String(record[0]), record[1], sessionName(record[2]).slice(0, 8), data.types[record[3]], record[5]];
    cells.forEach((text, column) => {
      const cell = document.createElement('span');
      cell.textContent = text;
      if (column === 2) { cell.className = 'session'; cell.style.setProperty('--dot', sessionColor(record[2])); cell.title = sessionName(record[2]); }
      row.appendChild(cell);
    });
    rows.push(row);
  }
  spacer.replaceChildren(...rows);
}
function revealRow(index) {
  const top = index * ROW;
  if (top < list.scrollTop || top + ROW > list.scrollTop + list.clientHeight) list.scrollTop = top - list.clientHeight / 2;
}
list.addEventListener('scroll', renderRows);
list.addEventListener('click', (event) => {
  const row = event.target.closest('.row');
  if (row) go(Number(row.dataset.index));
});

// Timeline: every record at its place in the log, coloured by session, the current one marked.
const canvas = $('timeline-canvas');
function drawTimeline() {
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  const scale = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * scale)) { canvas.width = Math.round(width * scale); canvas.height = Math.round(height * scale); }
  const context = canvas.getContext('2d');
  context.setTransform(scale, 0, 0, scale, 0, 0);
  context.clearRect(0, 0, width, height);
  const x = (index) => total <= 1 ? 0 : (index / (total - 1)) * (width - 2) + 1;
  let start = 0;
  for (let index = 1; index <= total; index++) {
    if (index < total && records[index][2] === records[start][2]) continue;
    context.fillStyle = sessionColor(records[start][2]);
    context.globalAlpha = records[start][2] < 0 ? 0.35 : 0.8;
    context.fillRect(x(start), 10, Math.max(1, x(index - 1) - x(start) + 1), 20);
    start = index;
  }
  context.globalAlpha = 1;
  if (current >= 0) {
    context.fillStyle = '#0f172a';
    context.fillRect(x(current) - 1, 4, 2, 32);
    context.beginPath();
    context.moveTo(x(current) - 5, 0); context.lineTo(x(current) + 5, 0); context.lineTo(x(current), 6); context.fill();
  }
}
function seek(event) {
  const rect = canvas.getBoundingClientRect();
  go(Math.round(((event.clientX - rect.left) / rect.width) * (total - 1)));
}
let dragging = false;
canvas.addEventListener('pointerdown', (event) => { dragging = true; canvas.setPointerCapture(event.pointerId); seek(event); });
canvas.addEventListener('pointermove', (event) => { if (dragging) seek(event); });
canvas.addEventListener('pointerup', () => { dragging = false; });
window.addEventListener('resize', () => { renderRows(); drawTimeline(); });

$('first').addEventListener('click', () => go(0));
$('prev').addEventListener('click', () => go(current - 1));
$('next').addEventListener('click', () => go(current + 1));
$('last').addEventListener('click', () => go(total - 1));
$('prev-change').addEventListener('click', () => go(change(-1)));
$('next-change').addEventListener('click', () => go(change(1)));
$('fit').addEventListener('click', () => {
  const fit = $('chart').classList.toggle('fit');
  $('fit').textContent = fit ? 'actual size' : 'whole chart';
  go(current);
});
document.addEventListener('keydown', (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  const keys = {
    ArrowRight: () => event.shiftKey ? change(1) : current + 1, ArrowDown: () => current + 1, j: () => current + 1,
    ArrowLeft: () => event.shiftKey ? change(-1) : current - 1, ArrowUp: () => current - 1, k: () => current - 1,
    PageDown: () => current + 50, PageUp: () => current - 50, Home: () => 0, End: () => total - 1,
  };
  const next = keys[event.key];
  if (!next) return;
  event.preventDefault();
  go(next());
});

$('count').textContent = total + ' records, ' + data.sessions.length + ' session' + (data.sessions.length === 1 ? '' : 's');
$('ends-first').textContent = total ? records[0][1] : '';
$('ends-last').textContent = total ? records[total - 1][1] : '';
go(0);
`;

/**
 * The HTML document for `data`, with `chartSvg` (the statechart drawing) inline.
 * @example
 * renderLogPage(logPageData(records), STATECHART_SVG)
 */
export function renderLogPage(data: LogPageData, chartSvg: string): string {
  const title = `${data.machine} log: ${data.title}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="model-updater log --html">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>${escapeHtml(title)}</h1><p id="count"></p></header>
<main>
<section id="chart" aria-label="statechart">
<div id="chart-tools"><button id="fit" type="button">whole chart</button></div>
${chartSvg}
</section>
<aside aria-label="the selected record">
<div class="controls">
<button id="first" type="button" title="First record (Home)">⇤</button>
<button id="prev-change" type="button" title="Previous change of state (Shift+←)">« state</button>
<button id="prev" type="button" title="Previous record (←)">← prev</button>
<button id="next" type="button" title="Next record (→)">next →</button>
<button id="next-change" type="button" title="Next change of state (Shift+→)">state »</button>
<button id="last" type="button" title="Last record (End)">⇥</button>
<span id="position"></span>
</div>
<p class="keys">← → step · Shift+← → next change of state · Home End · PgUp PgDn 50</p>
<dl>
<dt>record</dt><dd id="seq"></dd>
<dt>time</dt><dd id="time"></dd>
<dt>session</dt><dd id="session"></dd>
<dt>event</dt><dd id="type"></dd>
<dt>state</dt><dd id="state"></dd>
</dl>
<p id="summary"></p>
<pre id="payload"></pre>
</aside>
</main>
<section id="timeline" aria-label="timeline"><canvas id="timeline-canvas"></canvas><div class="ends"><span id="ends-first"></span><span id="ends-last"></span></div></section>
<section id="rows" aria-label="records"></section>
<script id="log-data" type="application/json">${scriptJson(data)}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
