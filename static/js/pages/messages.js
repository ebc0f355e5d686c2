// Messages: a search streamed from the brokers (progress, matches), shown as text, JSON or hex.

import { escapeHtml, fmtNum, fmtTime, renderPayload, utf8 } from "../format.js";
import { pageData, Socket } from "../live.js";

const { topic } = pageData();
const form = document.getElementById("search-form");
const tbody = document.querySelector("#results tbody");
const status = document.getElementById("scan-status");
const bar = document.getElementById("progress-bar");
const stopButton = document.getElementById("stop");
const errorsBox = document.getElementById("scan-errors");
const count = document.getElementById("result-count");
let mode = "auto";
let records = [];
let limit = 100;
let newestFirst = true;
let running = false;

function query() {
  const params = {};
  for (const [key, value] of new FormData(form)) {
    if (value !== "") params[key] = key === "ignore_case" ? true : value;
  }
  return params;
}

function queryString(extra = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries({ ...query(), ...extra })) params.set(key, value === true ? "on" : value);
  return params.toString();
}

function showSeekFields() {
  const seek = form.elements.seek.value;
  for (const field of form.querySelectorAll("[data-when]")) {
    field.classList.toggle("hidden", field.dataset.when !== seek);
  }
}

function headerChips(headers) {
  return (headers || []).map(([name, value]) =>
    `<span class="hdr" title="${escapeHtml(utf8(value) ?? "null")}">${escapeHtml(name)}</span>`).join("");
}

function truncated(record) {
  return record.value_size !== null && record.value && record.value_size > Math.floor((record.value.length * 3) / 4) + 2;
}

function row(record) {
  const link = `/topics/${encodeURIComponent(topic)}/messages/${record.partition}/${record.offset}/`;
  const more = truncated(record) ? ` <span class="faint">… ${fmtNum(record.value_size)} bytes</span>` : "";
  return `<tr data-partition="${record.partition}" data-offset="${record.offset}">` +
    `<td class="num">${record.partition}</td>` +
    `<td class="num"><a href="${link}">${record.offset}</a></td>` +
    `<td class="nowrap">${fmtTime(record.timestamp)}</td>` +
    `<td class="key">${renderPayload(record.key, mode === "json" ? "text" : mode, true)}</td>` +
    `<td class="value"><span class="clip">${renderPayload(record.value, mode, true)}</span>${more}</td>` +
    `<td class="headers">${headerChips(record.headers)}</td></tr>`;
}

function render() {
  if (records.length === 0) {
    tbody.innerHTML = `<tr><td class="empty" colspan="6">${running ? "Searching…" : "No message matches."}</td></tr>`;
  } else {
    tbody.innerHTML = records.map(row).join("");
  }
  count.textContent = records.length ? `${fmtNum(records.length)} shown${newestFirst ? ", newest first" : ", oldest first"}` : "";
}

function addRecords(found) {
  records = records.concat(found);
  records.sort((a, b) => (a.timestamp - b.timestamp) || (a.partition - b.partition) || (a.offset - b.offset));
  if (newestFirst) records.reverse();
  records = records.slice(0, limit);
  render();
}

function showProgress(summary, done) {
  const { scanned, to_scan: toScan, matches, elapsed_s: elapsed, records_per_s: rate } = summary;
  const fraction = done ? 1 : toScan > 0 ? Math.min(1, scanned / toScan) : 0;
  bar.style.width = `${(fraction * 100).toFixed(1)}%`;
  const parts = [`${done ? "Scanned" : "Scanning"} ${fmtNum(scanned)}${toScan ? ` of ${fmtNum(toScan)}` : ""} records`];
  if (rate && elapsed >= 0.25) parts.push(`${fmtNum(rate)} records/s on the brokers`);
  parts.push(`${fmtNum(matches)} match${matches === 1 ? "" : "es"}`);
  parts.push(`${(elapsed || 0).toFixed(2)} s`);
  if (done && summary.reasons.includes("limit")) parts.push("stopped at the limit");
  if (done && summary.reasons.includes("cancelled")) parts.push("stopped");
  status.textContent = parts.join(" · ");
  const problems = [...(summary.errors || [])];
  if (summary.offline_partitions?.length) problems.push(`offline partitions not read: ${summary.offline_partitions.join(", ")}`);
  errorsBox.classList.toggle("hidden", problems.length === 0);
  errorsBox.innerHTML = problems.map((p) => `<div class="notice error">${escapeHtml(p)}</div>`).join("");
}

function setRunning(value) {
  running = value;
  stopButton.classList.toggle("hidden", !value);
  form.classList.toggle("busy", value);
}

function showInvalid(errors) {
  for (const box of form.querySelectorAll("[data-errors]")) box.textContent = "";
  const general = [];
  for (const [field, list] of Object.entries(errors)) {
    const box = form.querySelector(`[data-errors="${field}"]`);
    const text = list.map((e) => e.message).join(" ");
    if (box) box.textContent = text;
    else general.push(`${field}: ${text}`);
  }
  status.textContent = general.length ? general.join(" · ") : "Fix the fields marked above.";
  setRunning(false);
}

const socket = new Socket("/ws/scan/", {
  onOpen: () => start(),
  onMessage(message) {
    switch (message.type) {
      case "started":
        for (const box of form.querySelectorAll("[data-errors]")) box.textContent = "";
        limit = message.limit;
        newestFirst = message.newest_first;
        records = [];
        bar.style.width = "0";
        render();
        break;
      case "records":
        addRecords(message.records);
        break;
      case "progress":
        showProgress(message, false);
        break;
      case "done":
        setRunning(false);
        showProgress(message, true);
        render();
        break;
      case "invalid":
        showInvalid(message.errors);
        break;
      case "error":
        setRunning(false);
        status.textContent = message.message;
        break;
      default:
    }
  },
});

function start() {
  setRunning(true);
  records = [];
  render();
  status.textContent = "Asking the brokers…";
  socket.send({ action: "start", topic, query: query() });
  history.replaceState(null, "", `${location.pathname}?${queryString()}`);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  start();
});
form.elements.seek.addEventListener("change", showSeekFields);
stopButton.addEventListener("click", () => socket.send({ action: "cancel" }));
for (const [id, format] of [["export-json", "json"], ["export-csv", "csv"]]) {
  document.getElementById(id).addEventListener("click", (event) => {
    event.preventDefault();
    location.href = `/topics/${encodeURIComponent(topic)}/messages/export/?${queryString({ format })}`;
  });
}
document.getElementById("display-mode").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-mode]");
  if (!button) return;
  mode = button.dataset.mode;
  for (const b of event.currentTarget.querySelectorAll("button")) b.classList.toggle("active", b === button);
  render();
});
tbody.addEventListener("click", (event) => {
  if (event.target.closest("a")) return;
  event.target.closest("tr[data-offset]")?.classList.toggle("open");
});
showSeekFields();
