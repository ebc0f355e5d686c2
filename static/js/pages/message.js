// One message: value and key as text, pretty JSON or a hex dump; header values decoded.

import { renderPayload } from "../format.js";
import { pageData } from "../live.js";

const { record } = pageData();
const show = (target, mode) => {
  document.getElementById(target).innerHTML = renderPayload(record[target], mode);
};
show("value", "auto");
show("key", "auto");
for (const group of document.querySelectorAll(".segmented[data-target]")) {
  group.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-mode]");
    if (!button) return;
    for (const b of group.querySelectorAll("button")) b.classList.toggle("active", b === button);
    show(group.dataset.target, button.dataset.mode);
  });
}
for (const cell of document.querySelectorAll("#headers [data-b64]")) {
  cell.innerHTML = cell.dataset.null === "1" ? '<span class="faint">null</span>' : renderPayload(cell.dataset.b64, "text");
}
