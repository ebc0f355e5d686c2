// A small SVG line chart for rates and lag over time: no library, redrawn on each update.

import { fmtClock } from "./format.js";

const NS = "http://www.w3.org/2000/svg";

function el(name, attrs, parent) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

// series: [{points: [[ms, value], ...]}]; options: {spanMs, format}
export function drawChart(svg, series, { spanMs = 5 * 60 * 1000, format = String, minMax = 1 } = {}) {
  const width = svg.clientWidth || 600;
  const height = svg.clientHeight || 180;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const left = 64;
  const right = 10;
  const top = 10;
  const bottom = 22;
  const now = Date.now();
  const start = now - spanMs;
  let max = 0;
  for (const s of series) for (const [t, v] of s.points) if (t >= start && v > max) max = v;
  max = niceMax(Math.max(max * 1.1, minMax));
  const x = (t) => left + ((t - start) / spanMs) * (width - left - right);
  const y = (v) => top + (1 - v / max) * (height - top - bottom);
  const grid = el("g", { class: "grid" }, svg);
  for (let i = 0; i <= 4; i += 1) {
    const value = (max * i) / 4;
    el("line", { x1: left, x2: width - right, y1: y(value), y2: y(value) }, grid);
    el("text", { x: left - 8, y: y(value) + 3.5, "text-anchor": "end" }, svg).textContent = format(value);
  }
  for (let i = 0; i <= 4; i += 1) {
    const t = start + (spanMs * i) / 4;
    el("text", { x: x(t), y: height - 6, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" }, svg)
      .textContent = i === 4 ? "now" : fmtClock(t);
  }
  series.forEach((s, index) => {
    const points = s.points.filter(([t]) => t >= start);
    if (points.length === 0) return;
    const line = points.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
    if (index === 0) {
      const area = `${line}L${x(points[points.length - 1][0]).toFixed(1)},${y(0)}L${x(points[0][0]).toFixed(1)},${y(0)}Z`;
      el("path", { d: area, class: `area s${index}` }, svg);
    }
    el("path", { d: line, class: `line s${index}` }, svg);
  });
}

// Points kept for a chart: appended as they come, trimmed to the span.
export class Series {
  constructor(points = [], spanMs = 5 * 60 * 1000) {
    this.points = points;
    this.spanMs = spanMs;
  }

  push(t, value) {
    this.points.push([t, value]);
    const start = Date.now() - this.spanMs - 10000;
    while (this.points.length && this.points[0][0] < start) this.points.shift();
  }
}
