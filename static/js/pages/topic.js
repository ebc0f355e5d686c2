// A topic's partitions, live: leaders and ISR from the metadata (and leader events the moment
// the controller decides), offsets and sizes from the leaders, rates from the brokers.

import { fmtBytes, fmtNum, fmtRate } from "../format.js";
import { live, pageData } from "../live.js";

const { topic } = pageData();
const table = document.getElementById("partitions");

function flash(element) {
  element.classList.remove("flash");
  void element.offsetWidth;
  element.classList.add("flash");
}

function set(row, key, html, highlight = false) {
  const cell = row.querySelector(`[data-k="${key}"]`);
  if (!cell || cell.innerHTML === html) return;
  cell.innerHTML = html;
  if (highlight) flash(cell);
}

function chips(replicas, isr, leader) {
  return replicas.map((b) => {
    const cls = b === leader ? " leader" : isr.includes(b) ? "" : " out";
    return `<span class="broker-chip${cls}" title="broker ${b}${isr.includes(b) ? "" : " (out of sync)"}">${b}</span>`;
  }).join("");
}

function leaderHtml(leader) {
  return leader === null || leader < 0 ? '<span class="badge bad">offline</span>' : String(leader);
}

function showLeader(row, leader, epoch) {
  const cell = row.querySelector('[data-k="leader"]');
  const html = leaderHtml(leader);
  if (cell.innerHTML !== html) {
    cell.innerHTML = html;
    flash(row);
    row.dataset.changedAt = Date.now();
  }
  if (epoch !== undefined) set(row, "leader_epoch", String(epoch));
}

function onPartitions(message) {
  let messages = 0;
  let size = 0;
  for (const p of message.partitions) {
    const row = table.querySelector(`tr[data-partition="${p.partition}"]`);
    if (!row) continue;
    showLeader(row, p.leader, p.leader_epoch);
    set(row, "replicas", chips(p.replicas, p.isr, p.leader), true);
    if (p.high_watermark !== undefined) {
      set(row, "log_start", fmtNum(p.log_start));
      set(row, "high_watermark", fmtNum(p.high_watermark));
      set(row, "log_end", fmtNum(p.log_end));
      set(row, "messages", fmtNum(p.high_watermark - p.log_start));
      set(row, "size", fmtBytes(p.size));
      messages += p.high_watermark - p.log_start;
      size += p.size;
    }
  }
  document.getElementById("total-messages").textContent = fmtNum(messages);
  document.getElementById("total-size").textContent = fmtBytes(size);
}

function onEvent({ event }) {
  if (event.topic !== topic || event.partition === null) return;
  const row = table.querySelector(`tr[data-partition="${event.partition}"]`);
  if (!row) return;
  if (event.kind === "leader") {
    showLeader(row, event.data.leader, event.data.leader_epoch);
    if (event.data.replicas) set(row, "replicas", chips(event.data.replicas, event.data.isr || [], event.data.leader), true);
  }
}

function onStats(message) {
  const [bytesIn, , bytesOut] = (message.topics || {})[topic] || [0, 0, 0];
  document.getElementById("rate-in").textContent = fmtRate(bytesIn);
  document.getElementById("rate-out").textContent = fmtRate(bytesOut);
}

live(["events", "stats", `topic:${topic}`], { partitions: onPartitions, event: onEvent, stats: onStats });
