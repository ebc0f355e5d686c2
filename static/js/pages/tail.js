// Live tail: new messages pushed as they are written; sampled by the server under high rates.

import { escapeHtml, fmtBytes, fmtNum, fmtTime, renderPayload, utf8 } from "../format.js";
import { live, pageData, Socket } from "../live.js";

const KEEP = 500;
const { topic } = pageData();
const tbody = document.querySelector("#tail tbody");
const filter = document.getElementById("tail-filter");
const state = document.getElementById("tail-state");
let mode = "auto";
let paused = false;
let received = 0;
let shown = 0;
const kept = [];

function matches(record) {
  const q = filter.value.trim().toLowerCase();
  if (!q) return true;
  return [utf8(record.key), utf8(record.value)].some((t) => t && t.toLowerCase().includes(q));
}

function row(record, highlight) {
  const tr = document.createElement("tr");
  if (highlight) tr.className = "new";
  tr.dataset.shownAt = Date.now();
  tr.dataset.offset = record.offset;
  tr.dataset.partition = record.partition;
  const link = `/topics/${encodeURIComponent(topic)}/messages/${record.partition}/${record.offset}/`;
  const headers = (record.headers || []).map(([n, v]) => `<span class="hdr" title="${escapeHtml(utf8(v) ?? "null")}">${escapeHtml(n)}</span>`).join("");
  tr.innerHTML = `<td class="num">${record.partition}</td><td class="num"><a href="${link}">${record.offset}</a></td>` +
    `<td class="nowrap">${fmtTime(record.timestamp)}</td><td class="key">${renderPayload(record.key, mode, true)}</td>` +
    `<td class="value"><span class="clip">${renderPayload(record.value, mode, true)}</span></td><td class="headers">${headers}</td>`;
  return tr;
}

function redraw() {
  tbody.replaceChildren(...kept.filter(matches).map((record) => row(record, false)));
}

function add(records, sampled) {
  tbody.querySelector(".waiting")?.remove();
  // New rows flash only while they come slowly: animating hundreds a second would cost
  // the browser more than drawing them.
  const highlight = !sampled && records.length <= 5;
  const fragment = document.createDocumentFragment();
  for (const record of records) {
    kept.unshift(record);
    if (matches(record)) fragment.prepend(row(record, highlight));
  }
  tbody.prepend(fragment);
  kept.splice(KEEP);
  while (tbody.children.length > KEEP) tbody.lastElementChild.remove();
}

new Socket(`/ws/topics/${encodeURIComponent(topic)}/tail/`, {
  onMessage(message) {
    if (message.type === "ready") {
      state.textContent = `following ${Object.keys(message.partitions).length} partitions from their ends`;
      state.dataset.ready = "1";
    } else if (message.type === "messages") {
      received += message.received;
      document.getElementById("tail-received").textContent = fmtNum(received);
      if (paused) return;
      shown += message.messages.length;
      document.getElementById("tail-shown").textContent = fmtNum(shown);
      add(message.messages, message.received > message.messages.length);
    } else if (message.type === "rate") {
      document.getElementById("tail-rate").textContent = fmtNum(message.messages_per_s);
    } else if (message.type === "error") {
      state.textContent = message.message;
    }
  },
  onClose() {
    state.dataset.ready = "";
    state.textContent = "reconnecting…";
  },
});

live(["stats"], {
  stats(message) {
    const [bytesIn, messagesIn] = (message.topics || {})[topic] || [0, 0];
    document.getElementById("topic-rate").textContent = fmtNum(messagesIn);
    document.getElementById("topic-bytes").textContent = `${fmtBytes(bytesIn)}/s`;
  },
});

document.getElementById("pause").addEventListener("click", (event) => {
  paused = !paused;
  event.target.textContent = paused ? "Resume" : "Pause";
});
document.getElementById("clear").addEventListener("click", () => {
  kept.length = 0;
  tbody.replaceChildren();
});
filter.addEventListener("input", redraw);
document.getElementById("display-mode").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-mode]");
  if (!button) return;
  mode = button.dataset.mode;
  for (const b of event.currentTarget.querySelectorAll("button")) b.classList.toggle("active", b === button);
  redraw();
});
