// A consumer group: per-partition lag and the lag chart, pushed every second by the monitor.

import { drawChart, Series } from "../chart.js";
import { fmtNum } from "../format.js";
import { live, pageData } from "../live.js";

const { group, history } = pageData();
const series = new Series(history, 10 * 60 * 1000);
const chart = document.getElementById("lag-chart");
const redraw = () => drawChart(chart, [series], { spanMs: 10 * 60 * 1000, format: fmtNum, minMax: 10 });
redraw();
window.addEventListener("resize", redraw);

const STATE_STYLE = { Stable: "ok", Empty: "", Dead: "bad" };
const table = document.querySelector("#group-partitions tbody");

function set(row, key, value) {
  const cell = row.querySelector(`[data-k="${key}"]`);
  const text = fmtNum(value);
  if (cell.textContent === text) return;
  cell.textContent = text;
  cell.classList.remove("flash");
  void cell.offsetWidth;
  cell.classList.add("flash");
}

function onLag(message) {
  const entry = message.group;
  if (!entry) return;
  document.getElementById("total-lag").textContent = fmtNum(entry.total_lag);
  document.getElementById("members").textContent = fmtNum(entry.members);
  document.getElementById("partition-count").textContent = fmtNum(entry.partitions.length);
  const badge = document.querySelector('h1 [data-k="state"]');
  if (badge && badge.textContent !== entry.state) {
    badge.textContent = entry.state;
    badge.className = `badge ${STATE_STYLE[entry.state] ?? "warn"}`;
  }
  for (const p of entry.partitions) {
    let row = table.querySelector(`tr[data-tp="${CSS.escape(`${p.topic}/${p.partition}`)}"]`);
    if (!row) {
      table.querySelector(".empty-row")?.remove();
      row = document.createElement("tr");
      row.dataset.tp = `${p.topic}/${p.partition}`;
      row.innerHTML = `<td class="name"></td><td class="num">${p.partition}</td><td class="num" data-k="committed"></td>` +
        '<td class="num" data-k="log_end"></td><td class="num" data-k="lag"></td><td class="mono">—</td><td></td>';
      row.querySelector(".name").textContent = p.topic;
      table.append(row);
    }
    set(row, "committed", p.committed);
    set(row, "log_end", p.log_end);
    set(row, "lag", p.lag);
  }
  series.push(Date.parse(message.at), entry.total_lag);
  redraw();
}

live(["lag"], { lag: onLag }, { group });
