// Overview: brokers, rates, throughput chart, replica map and events, all pushed live.

import { drawChart, Series } from "../chart.js";
import { fmtBytes, fmtNum, fmtRate } from "../format.js";
import { live, pageData } from "../live.js";
import { prependEvent } from "./events-shared.js";

const data = pageData();
const brokerIds = data.brokers || [];
const incoming = new Series(data.history.map(([t, bytesIn]) => [t, bytesIn]));
const outgoing = new Series(data.history.map(([t, , bytesOut]) => [t, bytesOut]));
const chart = document.getElementById("throughput");
const redraw = () => drawChart(chart, [incoming, outgoing], { format: (v) => `${fmtBytes(v)}/s`, minMax: 1000 });
redraw();
window.addEventListener("resize", redraw);

const FORMATS = {
  partitions: fmtNum,
  leaders: fmtNum,
  under_replicated: fmtNum,
  bytes_in_per_s: fmtRate,
  bytes_out_per_s: fmtRate,
  messages_in_per_s: (v) => `${fmtNum(v)}/s`,
  disk_bytes: fmtBytes,
  connections: fmtNum,
};

function setBrokerState(card, alive) {
  card.classList.toggle("down", !alive);
  const badge = card.querySelector('[data-k="state"]');
  const label = alive ? "up" : "down";
  if (!badge.textContent.includes(label)) {
    badge.className = `badge ${alive ? "ok" : "bad"} flash`;
    badge.innerHTML = `<span class="dot"></span>${label}`;
  }
}

function onStats(message) {
  let up = 0;
  for (const broker of message.brokers) {
    const card = document.querySelector(`.broker[data-broker="${broker.id}"]`);
    if (broker.alive) up += 1;
    if (!card) continue;
    setBrokerState(card, broker.alive);
    for (const [key, format] of Object.entries(FORMATS)) {
      const cell = card.querySelector(`[data-k="${key}"]`);
      // A dead broker publishes nothing: its last figures would mislead.
      if (cell) cell.textContent = broker[key] === undefined ? "—" : format(broker[key]);
    }
  }
  document.getElementById("brokers-up").textContent = up;
  const controller = document.getElementById("controller");
  controller.innerHTML = message.controller ? `#${message.controller.id} <small>epoch ${message.controller.epoch}</small>` : "—";
  const totals = message.totals;
  document.getElementById("rate-in").textContent = fmtRate(totals.bytes_in_per_s);
  document.getElementById("rate-out").textContent = fmtRate(totals.bytes_out_per_s);
  document.getElementById("rate-msgs").textContent = fmtNum(totals.messages_in_per_s);
  document.getElementById("urp").textContent = fmtNum(totals.under_replicated);
  document.getElementById("urp-card").classList.toggle("bad", totals.under_replicated > 0);
  incoming.push(message.at, totals.bytes_in_per_s);
  outgoing.push(message.at, totals.bytes_out_per_s);
  redraw();
}

const MARKS = { leader: "L", follower: "F", out: "×" };

function updateReplicaRow(event) {
  const row = document.querySelector(`#replica-map tr[data-tp="${CSS.escape(`${event.topic}/${event.partition}`)}"]`);
  if (!row) return;
  const { leader, isr = [], replicas } = event.data;
  const cells = row.querySelectorAll("td.cell");
  const leaderCell = row.querySelector('[data-k="leader"]');
  const leaderText = leader >= 0 ? String(leader) : "none";
  if (leaderCell.textContent !== leaderText) {
    leaderCell.textContent = leaderText;
    leaderCell.classList.remove("flash");
    void leaderCell.offsetWidth;
    leaderCell.classList.add("flash");
  }
  cells.forEach((cell, index) => {
    const id = brokerIds[index];
    const hosts = replicas ? replicas.includes(id) : cell.textContent.trim() !== "";
    const role = !hosts ? "" : id === leader ? "leader" : isr.includes(id) ? "follower" : "out";
    const current = cell.querySelector(".rm")?.classList[1] || "";
    if (role === current) return;
    cell.innerHTML = role ? `<span class="rm ${role}">${MARKS[role]}</span>` : "";
    cell.classList.remove("flash");
    void cell.offsetWidth;
    cell.classList.add("flash");
  });
}

function onEvent(message) {
  const event = message.event;
  prependEvent(document.getElementById("recent-events"), event);
  if ((event.kind === "leader" || event.kind === "isr") && event.topic) updateReplicaRow(event);
  if (event.kind === "broker_up" || event.kind === "broker_down") {
    const card = document.querySelector(`.broker[data-broker="${event.broker}"]`);
    if (card) setBrokerState(card, event.kind === "broker_up");
  }
}

live(["events", "stats"], { stats: onStats, event: onEvent });

const search = document.getElementById("replica-search");
let timer = null;
search.addEventListener("input", () => {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    const params = new URLSearchParams(location.search);
    if (search.value.trim()) params.set("replicas", search.value.trim());
    else params.delete("replicas");
    const url = `${location.pathname}?${params}`;
    const response = await fetch(url, { headers: { "X-Partial": "replicas" } });
    if (response.ok) {
      document.getElementById("replica-map").innerHTML = await response.text();
      history.replaceState(null, "", url);
    }
  }, 200);
});
