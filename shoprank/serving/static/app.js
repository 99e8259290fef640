// shoprank storefront: plain JS, no build step. Every bit of shop data is written with textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const store = window.localStorage;
const state = { shop: "", page: 1, perPage: 10, filters: {}, total: 0, query: "" };

function key() { return store.getItem("shoprank.key") || ""; }

function visitor() {
  let id = store.getItem("shoprank.visitor");
  if (!id) { id = "visitor-" + Math.random().toString(36).slice(2, 10); store.setItem("shoprank.visitor", id); }
  return id;
}

function shopper() { return $("user").value.trim() || visitor(); }

function say(text) { $("status").textContent = text; }

async function api(path, options = {}) {
  const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
  if (key()) headers.Authorization = "Bearer " + key();
  const response = await fetch(path, Object.assign({}, options, { headers }));
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const error = (body && body.error) || { code: "http_" + response.status, message: response.statusText };
    const failure = new Error(error.message);
    failure.code = error.code;
    failure.status = response.status;
    throw failure;
  }
  return body;
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function price(value, currency) {
  if (value === null || value === undefined) return "";
  if (currency) {
    try { return new Intl.NumberFormat(undefined, { style: "currency", currency: currency }).format(value); }
    catch (e) { return value.toFixed(2) + " " + currency; }
  }
  return value.toFixed(2);
}

// Score internals (the parts a ranking was made of) are for the shop's staff: shown only with "Show scores"
// ticked (or #debug in the address), never to shoppers by default.
function debugOn() { return store.getItem("shoprank.debug") === "1"; }

function renderItems(list, items, position0, query, requestId) {
  list.replaceChildren();
  items.forEach((item, i) => {
    const li = el("li");
    li.dataset.id = item.id;
    const button = el("button", item.title, "item-button");
    button.type = "button";
    button.addEventListener("click", () => openProduct(item, position0 + i, query, requestId));
    li.append(button);
    const meta = [item.brand, item.category, price(item.price, item.currency),
      item.in_stock === false ? "out of stock" : ""].filter(Boolean).join(" · ");
    if (meta) li.append(el("div", meta, "meta"));
    if (debugOn()) {
      const parts = Object.entries(item.parts || {}).map(([k, v]) => k + " " + v.toFixed(2)).join(", ");
      li.append(el("div", "score " + item.score.toFixed(3) + (parts ? " (" + parts + ")" : ""), "meta score"));
    }
    if (item.reasons && item.reasons.length) li.append(el("div", item.reasons.join("; "), "reasons"));
    list.append(li);
  });
}

function renderFacets(facets) {
  const aside = $("facets");
  aside.replaceChildren();
  const names = { category: "Category", brand: "Brand", price: "Price", in_stock: "Availability" };
  for (const [name, values] of Object.entries(facets || {})) {
    if (!values.length) continue;
    const box = el("div", null, "facet");
    box.append(el("h3", names[name] || name));
    const ul = el("ul");
    for (const value of values) {
      const label = name === "in_stock" ? (value.value ? "In stock" : "Out of stock") : String(value.value);
      const button = el("button", label + " (" + value.count + ")");
      button.type = "button";
      const active = isActive(name, value);
      button.setAttribute("aria-pressed", active ? "true" : "false");
      button.addEventListener("click", () => { toggleFilter(name, value, active); search(1); });
      const li = el("li");
      li.append(button);
      ul.append(li);
    }
    box.append(ul);
    aside.append(box);
  }
}

function isActive(name, value) {
  const f = state.filters;
  if (name === "price") return f.price_min === value.min && f.price_max === (value.max === null ? undefined : value.max);
  return f[name] === value.value;
}

function toggleFilter(name, value, active) {
  const f = state.filters;
  if (name === "price") {
    if (active) { delete f.price_min; delete f.price_max; } else {
      f.price_min = value.min;
      if (value.max === null) delete f.price_max; else f.price_max = value.max;
    }
  } else if (active) { delete f[name]; } else { f[name] = value.value; }
}

async function search(page) {
  state.page = page;
  state.query = $("q").value;
  const params = new URLSearchParams({ q: state.query, page: String(page), per_page: String(state.perPage) });
  if ($("sort").value !== "relevance") params.set("sort", $("sort").value);
  params.set("user_id", shopper());
  for (const [k, v] of Object.entries(state.filters)) params.set(k, String(v));
  try {
    const body = await api("/shops/" + encodeURIComponent(state.shop) + "/search?" + params);
    state.total = body.total;
    renderItems($("results"), body.hits, (page - 1) * state.perPage, state.query, body.request_id);
    renderFacets(body.facets);
    const corrected = $("did-you-mean");
    corrected.hidden = !body.corrected_query;
    corrected.textContent = body.corrected_query ? "Showing results for “" + body.corrected_query + "”." : "";
    const shown = body.hits.length;
    $("results-summary").textContent = shown
      ? body.total + " results; showing " + ((page - 1) * state.perPage + 1) + "–" + ((page - 1) * state.perPage + shown)
      : body.total === 0 ? "No products match “" + state.query + "”." : "No more results.";
    renderNoMatch(body);
    $("prev").disabled = page <= 1;
    $("next").disabled = page * state.perPage >= body.total;
    say("");
  } catch (error) { failed(error, $("results-summary")); }
}

function renderNoMatch(body) {
  // nothing matched: "did you mean" (a corrected query that has results) and, when the shop asks for them,
  // the closest products, marked as not matching
  const box = $("no-match");
  box.replaceChildren();
  box.hidden = body.total !== 0;
  if (body.total !== 0) return;
  box.append(el("p", "Check the spelling, use fewer or more general words, or remove a filter."));
  if (body.did_you_mean) {
    const p = el("p", "Did you mean ", "did-you-mean");
    const link = el("button", body.did_you_mean, "link-button");
    link.type = "button";
    link.id = "suggestion";
    link.addEventListener("click", () => { $("q").value = body.did_you_mean; search(1); });
    p.append(link, document.createTextNode("?"));
    box.append(p);
  }
  if (body.closest && body.closest.length) {
    box.append(el("h3", "Closest products (they do not match your search)"));
    const list = el("ol", null, "items closest");
    list.id = "closest";
    renderItems(list, body.closest, 0, state.query, body.request_id);
    box.append(list);
  }
}

function failed(error, where) {
  const text = error.status === 401 ? "Enter an API key above (shoprank keys create --scope storefront --shop NAME)."
    : error.message;
  where.textContent = text;
  if (error.status === 401 || error.status === 403) say(text);
}

async function openProduct(item, position, query, requestId) {
  $("product").hidden = false;
  const detail = $("product-detail");
  detail.replaceChildren(el("p", item.title, "title"));
  const meta = [item.brand, item.category, price(item.price, item.currency)].filter(Boolean).join(" · ");
  if (meta) detail.append(el("p", meta, "meta"));
  const click = { event_id: "web-" + Date.now() + "-" + Math.random().toString(36).slice(2, 8),
    user_id: shopper(), item_id: item.id, type: "click", timestamp: Date.now() / 1000, position: position };
  if (query) click.query = query;
  if (requestId) click.request_id = requestId;  // ties the click to the answer that showed it
  $("click-status").textContent = "Recording click…";
  try {
    const body = await api("/shops/" + encodeURIComponent(state.shop) + "/events", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ events: [click] }) });
    $("click-status").textContent = "Click recorded for " + click.user_id + " (" + body.stored + " stored).";
  } catch (error) { $("click-status").textContent = "Click not recorded: " + error.message; }
  const base = "/shops/" + encodeURIComponent(state.shop) + "/products/" + encodeURIComponent(item.id);
  for (const [path, list] of [["/similar?k=5", $("similar")], ["/bought-together?k=5", $("together")]]) {
    try {
      const answer = await api(base + path);
      renderItems(list, answer.items, 0, "", answer.request_id);
    } catch (error) {
      list.replaceChildren(el("li", error.status === 409 ? "Not available for this shop." : error.message, "meta"));
    }
  }
  loadForYou();
}

async function loadForYou() {
  const user = shopper();
  $("for-you-note").textContent = "For " + user + ":";
  try {
    const body = await api("/shops/" + encodeURIComponent(state.shop) + "/users/" + encodeURIComponent(user) +
      "/recommendations?k=8");
    renderItems($("for-you"), body.items, 0, "", body.request_id);
    if (!body.items.length) $("for-you-note").textContent = "Nothing to recommend for " + user + " yet.";
  } catch (error) {
    $("for-you").replaceChildren();
    $("for-you-note").textContent = error.status === 409 ? "This shop has no recommendation model." : error.message;
  }
}

async function ask() {
  const box = $("help-answer");
  const question = $("help-q").value.trim();
  $("help-products").replaceChildren();
  if (!question) { box.replaceChildren(el("p", "Type a question first.", "meta")); return; }
  box.replaceChildren(el("p", "Looking for an answer…", "meta"));
  try {
    const params = new URLSearchParams({ q: question });
    const body = await api("/shops/" + encodeURIComponent(state.shop) + "/answer?" + params);
    if (body.answer) {
      box.replaceChildren(el("p", body.answer.text, "answer"),
        el("p", "Answer " + body.answer.faq_id + " (confidence " + body.answer.confidence.toFixed(2) + ")", "meta"));
    } else {
      box.replaceChildren(el("p", "We could not find an answer to that: a person from our team will reply.", "handoff"));
    }
    renderItems($("help-products"), body.products, 0, question);
  } catch (error) {
    box.replaceChildren(el("p", error.status === 409 ? "This shop has no answers model yet." : error.message, "meta"));
  }
}

async function loadUsers() {
  const list = $("users");
  list.replaceChildren();
  try {
    const body = await api("/shops/" + encodeURIComponent(state.shop) + "/users?limit=20");
    for (const user of body.users) { const option = el("option"); option.value = user; list.append(option); }
  } catch (error) { /* the picker still takes any id */ }
}

async function loadShops() {
  const select = $("shop");
  try {
    const body = await api("/shops");
    select.replaceChildren();
    for (const shop of body.shops) { const option = el("option", shop.name); option.value = shop.name; select.append(option); }
    const saved = store.getItem("shoprank.shop");
    if (saved && body.shops.some((s) => s.name === saved)) select.value = saved;
    state.shop = select.value;
    if (!body.shops.length) say("No shops yet.");
    return body.shops.length > 0;
  } catch (error) { failed(error, $("status")); return false; }
}

async function start() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  if (fragment.get("key")) {
    store.setItem("shoprank.key", fragment.get("key"));
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  if (fragment.has("debug")) store.setItem("shoprank.debug", "1");
  $("key").value = key();
  $("debug").checked = debugOn();
  $("user").value = store.getItem("shoprank.user") || "";
  let open = false;
  try {
    const health = await (await fetch("/health")).json();
    open = Boolean(health.open_access);
    $("open-warning").hidden = !open;
  } catch (error) { /* not ready yet */ }
  $("key-hint").hidden = Boolean(key()) || open;  // no key: say how to get one instead of an empty page
  if (await loadShops()) { loadUsers(); loadForYou(); }
}

$("settings").addEventListener("submit", async (event) => {
  event.preventDefault();
  store.setItem("shoprank.key", $("key").value.trim());
  store.setItem("shoprank.user", $("user").value.trim());
  store.setItem("shoprank.debug", $("debug").checked ? "1" : "0");
  if ($("shop").value) store.setItem("shoprank.shop", $("shop").value);
  await start();
  if (state.query) search(1);
});
$("shop").addEventListener("change", () => {
  state.shop = $("shop").value; state.filters = {};
  store.setItem("shoprank.shop", state.shop); loadUsers(); loadForYou();
});
$("search-form").addEventListener("submit", (event) => { event.preventDefault(); state.filters = {}; search(1); });
$("sort").addEventListener("change", () => { if (state.query) search(1); });
$("prev").addEventListener("click", () => search(state.page - 1));
$("next").addEventListener("click", () => search(state.page + 1));
$("help-form").addEventListener("submit", (event) => { event.preventDefault(); ask(); });
start();
