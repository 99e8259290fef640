// shoprank analytics: searches per day, zero-result rate, click-through by position, top and zero-result queries.
// Plain JS beside analytics.js (which fills the shop picker and keeps the key); data written with textContent only.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const NS = "http://www.w3.org/2000/svg";
  const pct = (v) => (v * 100).toFixed(1) + "%";

  function node(tag, attrs, text) {
    const n = document.createElementNS(NS, tag);
    Object.entries(attrs).forEach(([k, v]) => n.setAttribute(k, String(v)));
    if (text !== undefined) n.textContent = text;
    return n;
  }

  async function get(path) {
    const headers = { Accept: "application/json" };
    const key = window.localStorage.getItem("shoprank.key") || "";
    if (key) headers.Authorization = "Bearer " + key;
    const response = await fetch(path, { headers });
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new Error((body && body.error && body.error.message) || response.statusText);
    return body;
  }

  function bars(box, values, labels, cls, line) {
    box.replaceChildren();
    const W = Number(box.getAttribute("width")), H = Number(box.getAttribute("height"));
    const L = 45, R = 15, T = 12, B = 30;
    if (!values.length) { box.append(node("text", { x: 20, y: 40 }, "no searches in this period")); return; }
    const most = Math.max(...values, 1e-9), step = (W - L - R) / values.length, w = Math.max(2, Math.min(40, step - 2));
    values.forEach((v, i) => {
      const h = (v / most) * (H - T - B), x = L + i * step + (step - w) / 2;
      const bar = node("rect", { x, y: H - B - h, width: w, height: h, fill: "#c9d6ea", class: cls, "data-value": v });
      bar.append(node("title", {}, labels[i] + ": " + (cls === "ctr-bar" ? pct(v) : v)));
      box.append(bar);
      if (values.length <= 20 || i % Math.ceil(values.length / 10) === 0) {
        box.append(node("text", { x: x, y: H - 12, "font-size": 10 }, labels[i]));
      }
    });
    box.append(node("text", { x: 4, y: T + 8, "font-size": 10 }, cls === "ctr-bar" ? pct(most) : String(most)));
    if (line) {
      const y = (s) => H - B - s * (H - T - B);
      const d = line.map((s, i) => (i ? "L" : "M") + (L + i * step + step / 2).toFixed(1) + " " + y(s).toFixed(1));
      box.append(node("path", { d: d.join(" "), fill: "none", stroke: "#8a1c1c", "stroke-width": 2, class: "zero-rate" }));
    }
  }

  function rows(body, list, cells) {
    body.replaceChildren();
    list.forEach((item) => {
      const tr = document.createElement("tr");
      cells(item).forEach((v) => { const td = document.createElement("td"); td.textContent = v; tr.append(td); });
      body.append(tr);
    });
  }

  async function load() {
    const shop = $("shop").value;
    if (!shop) return;
    try {
      const r = await get("/shops/" + encodeURIComponent(shop) + "/analytics?days=" + $("days").value);
      const lat = r.latency_ms;
      $("search-summary").textContent = r.searches + " searches, " + r.distinct_queries + " distinct queries, " +
        r.zero_result_searches + " found nothing (" + pct(r.zero_result_rate) + ")" +
        (lat.p50 === null ? "" : "; latency p50 " + lat.p50.toFixed(1) + " ms, p99 " + lat.p99.toFixed(1) + " ms");
      const days = r.searches_per_day;
      bars($("days-plot"), days.map((d) => d.searches), days.map((d) => d.day.slice(5)), "day-bar",
        days.map((d) => d.zero_result_rate));
      const pos = r.ctr_by_position;
      bars($("position-plot"), pos.map((p) => p.ctr), pos.map((p) => String(p.position + 1)), "ctr-bar");
      rows($("top-queries"), r.top_queries, (q) => [q.query || "(empty)", q.count, pct(q.ctr), pct(q.conversion)]);
      rows($("zero-queries"), r.zero_result_queries, (q) => [q.query || "(empty)", q.count]);
    } catch (error) { $("search-summary").textContent = "search analytics: " + error.message; }
  }

  $("settings").addEventListener("submit", () => setTimeout(load, 0));
  $("days").addEventListener("change", load);
  $("shop").addEventListener("change", load);
  const started = Date.now();
  const wait = setInterval(() => {  // analytics.js fills the shop picker; load once it has
    if ($("shop").value || Date.now() - started > 15000) { clearInterval(wait); load(); }
  }, 50);
})();
