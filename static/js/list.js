// List pages (topics, groups): search, filters, sorting and paging without reloading the page;
// the server does the work and answers with the table alone (X-Partial).

export function liveList(form, target) {
  let timer = null;
  let controller = null;

  async function load(url) {
    if (controller) controller.abort();
    controller = new AbortController();
    try {
      const response = await fetch(url, { headers: { "X-Partial": "1" }, signal: controller.signal });
      if (!response.ok) return;
      target.innerHTML = await response.text();
      history.replaceState(null, "", url);
      target.dispatchEvent(new CustomEvent("list:loaded"));
    } catch (error) {
      if (error.name !== "AbortError") throw error;
    }
  }

  function fromForm() {
    const params = new URLSearchParams(new FormData(form));
    for (const [key, value] of [...params]) if (value === "") params.delete(key);
    return `${location.pathname}?${params}`;
  }

  form.addEventListener("input", (event) => {
    clearTimeout(timer);
    timer = setTimeout(() => load(fromForm()), event.target.type === "search" ? 180 : 0);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load(fromForm());
  });
  target.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-page]");
    if (!link) return;
    event.preventDefault();
    const url = new URL(link.href);
    for (const name of ["sort", "order"]) {
      const input = form.elements[name];
      if (input && url.searchParams.has(name)) input.value = url.searchParams.get(name);
    }
    load(url.pathname + url.search);
  });
}
