// Rendering one cluster event as a list item, shared by the overview and the events page.

import { escapeHtml } from "../format.js";

export const KIND_LABELS = {
  broker_up: "broker up",
  broker_down: "broker down",
  controller: "controller",
  leader: "leader",
  isr: "ISR",
  topic: "topic",
  config: "config",
  group: "group",
  admin: "admin",
};

const KIND_STYLE = { broker_down: "bad", broker_up: "ok", leader: "warn", isr: "warn", admin: "accent", topic: "info", config: "info" };

function clock(iso) {
  const d = new Date(iso);
  return d.toLocaleTimeString("en-GB", { hour12: false });
}

export function eventItem(event, { wide = false } = {}) {
  const li = document.createElement("li");
  li.className = "flash";
  const badge = `<span class="badge ${KIND_STYLE[event.kind] || ""} kind-${event.kind}">${escapeHtml(KIND_LABELS[event.kind] || event.kind)}</span>`;
  if (wide) {
    const d = new Date(event.at);
    li.innerHTML = `<time>${d.toISOString().replace("T", " ").slice(0, 19)}</time><span>${badge}</span>` +
      `<span class="msg">${escapeHtml(event.message)}</span><span class="actor">${escapeHtml(event.actor || "")}</span>`;
  } else {
    li.innerHTML = `<time>${clock(event.at)}</time><span>${badge}</span><span class="msg">${escapeHtml(event.message)}</span>`;
  }
  return li;
}

export function prependEvent(list, event, { max = 12, wide = false } = {}) {
  list.querySelector(".empty-note")?.remove();
  list.prepend(eventItem(event, { wide }));
  while (list.children.length > max) list.lastElementChild.remove();
}
