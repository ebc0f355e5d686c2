// Topics: server-side search, sort and paging; live rates of the visible topics.

import { fmtNum, fmtRate } from "../format.js";
import { liveList } from "../list.js";
import { live } from "../live.js";

const table = document.getElementById("list-table");
liveList(document.getElementById("list-form"), table);

live(["stats"], {
  stats(message) {
    const rates = message.topics || {};
    for (const row of table.querySelectorAll("tr[data-topic]")) {
      const [bytesIn, messagesIn, bytesOut] = rates[row.dataset.topic] || [0, 0, 0];
      row.querySelector('[data-k="in"]').textContent = fmtRate(bytesIn);
      row.querySelector('[data-k="msgs"]').textContent = fmtNum(messagesIn);
      row.querySelector('[data-k="out"]').textContent = fmtRate(bytesOut);
    }
  },
});
