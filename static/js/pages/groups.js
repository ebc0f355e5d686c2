// Consumer groups: server-side search, sort and paging; state, members and lag pushed live.

import { fmtNum } from "../format.js";
import { liveList } from "../list.js";
import { live } from "../live.js";

const table = document.getElementById("list-table");
liveList(document.getElementById("list-form"), table);

const STATE_STYLE = { Stable: "ok", Empty: "", Dead: "bad" };

live(["lag"], {
  lag(message) {
    for (const row of table.querySelectorAll("tr[data-group]")) {
      const entry = message.groups[row.dataset.group];
      if (!entry) continue;
      const [state, members, lag] = entry;
      const badge = row.querySelector('[data-k="state"]');
      if (badge.textContent !== state) {
        badge.textContent = state;
        badge.className = `badge ${STATE_STYLE[state] ?? "warn"}`;
      }
      row.querySelector('[data-k="members"]').textContent = fmtNum(members);
      const cell = row.querySelector('[data-k="lag"]');
      const text = fmtNum(lag);
      if (cell.textContent !== text) cell.textContent = text;
    }
  },
});
