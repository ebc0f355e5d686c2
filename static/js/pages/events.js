// Events: new cluster events are prepended as they happen (when showing the newest page).

import { live } from "../live.js";
import { prependEvent } from "./events-shared.js";

const list = document.getElementById("events");
if (list.dataset.live === "1") {
  const kind = list.dataset.kind;
  const search = list.dataset.search.toLowerCase();
  live(["events"], {
    event({ event }) {
      if (kind && event.kind !== kind) return;
      const text = `${event.message} ${event.topic} ${event.actor}`.toLowerCase();
      if (search && !text.includes(search)) return;
      prependEvent(list, event, { max: 50, wide: true });
    },
  });
}
