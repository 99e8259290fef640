// shoprank storefront: suggestions under the search box (queries, categories, products), keyboard navigation
// (ArrowDown/ArrowUp move, Enter takes the highlighted one and searches, Escape closes). Plain JS, textContent only.
"use strict";

(() => {
  const input = document.getElementById("q");
  const list = document.getElementById("suggestions");
  const form = document.getElementById("search-form");
  let items = [], active = -1, timer = null, asked = 0;

  function close() {
    list.hidden = true; list.replaceChildren(); items = []; active = -1;
    input.setAttribute("aria-expanded", "false"); input.removeAttribute("aria-activedescendant");
  }

  function highlight(n) {
    active = n;
    [...list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === n)));
    if (n >= 0) input.setAttribute("aria-activedescendant", "suggestion-" + n);
    else input.removeAttribute("aria-activedescendant");
  }

  function take(n) {
    input.value = items[n].text;
    close();
    form.requestSubmit();
  }

  function show(found) {
    // a later answer (the shopper typed on) replaces the list: the highlighted suggestion stays highlighted
    // where the new list still holds it, so an ArrowDown pressed before the answer came is not lost
    const kept = active >= 0 && items[active] ? items[active].text : null;
    items = found;
    list.replaceChildren(...found.map((s, i) => {
      const li = document.createElement("li");
      li.id = "suggestion-" + i; li.setAttribute("role", "option"); li.setAttribute("aria-selected", "false");
      li.dataset.kind = s.kind;
      li.append(document.createTextNode(s.text));
      const kind = document.createElement("span"); kind.className = "kind";
      kind.textContent = s.kind === "query" ? "search" : s.kind; li.append(kind);
      li.addEventListener("mousedown", (event) => { event.preventDefault(); take(i); });
      return li;
    }));
    list.hidden = !found.length;
    input.setAttribute("aria-expanded", String(found.length > 0));
    active = -1;
    const again = kept === null ? -1 : found.findIndex((s) => s.text === kept);
    if (again >= 0) highlight(again);
  }

  async function fetchSuggestions() {
    const shop = document.getElementById("shop").value, text = input.value.trim();
    if (!shop || !text) { close(); return; }
    const mine = ++asked;
    const headers = { Accept: "application/json" };
    const key = window.localStorage.getItem("shoprank.key") || "";
    if (key) headers.Authorization = "Bearer " + key;
    try {
      const response = await fetch("/shops/" + encodeURIComponent(shop) + "/suggest?k=8&q=" + encodeURIComponent(text),
        { headers });
      if (!response.ok || mine !== asked) return;
      show((await response.json()).suggestions);
    } catch (e) { close(); }
  }

  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(fetchSuggestions, 80); });
  input.addEventListener("keydown", (event) => {
    if (list.hidden || !items.length) return;
    if (event.key === "ArrowDown") { event.preventDefault(); highlight((active + 1) % items.length); }
    else if (event.key === "ArrowUp") { event.preventDefault(); highlight(active <= 0 ? items.length - 1 : active - 1); }
    else if (event.key === "Escape") { event.preventDefault(); close(); }
    else if (event.key === "Enter" && active >= 0) { event.preventDefault(); take(active); }
  });
  input.addEventListener("blur", () => setTimeout(close, 100));
  form.addEventListener("submit", () => { asked++; clearTimeout(timer); close(); });  // late answers: dropped
})();
