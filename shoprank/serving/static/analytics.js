// shoprank analytics: review sentiment trend and alerts. Plain JS, data written with textContent only.
"use strict";

const $ = (id) => document.getElementById(id);
const store = window.localStorage;
const SVG = "http://www.w3.org/2000/svg";

function key() { return store.getItem("shoprank.key") || ""; }
function say(text) { $("status").textContent = text; }

async function api(path) {
  const headers = { Accept: "application/json" };
  if (key()) headers.Authorization = "Bearer " + key();
  const response = await fetch(path, { headers });
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) throw new Error((body && body.error && body.error.message) || response.statusText);
  return body;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  Object.entries(attrs).forEach(([k, v]) => node.setAttribute(k, String(v)));
  if (text !== undefined) node.textContent = text;
  return node;
}

function plot(points, alerts) {
  const box = $("plot");
  box.replaceChildren();
  if (!points.length) { box.append(svg("text", { x: 20, y: 40 }, "no labelled reviews yet")); return; }
  const W = 900, H = 260, L = 50, R = 20, T = 15, B = 35;
  const times = points.map((p) => Date.parse(p.start));
  const t0 = Math.min(...times), t1 = Math.max(...times) || t0 + 1;
  const x = (t) => L + (t1 === t0 ? (W - L - R) / 2 : ((t - t0) / (t1 - t0)) * (W - L - R));
  const most = Math.max(...points.map((p) => p.reviews));
  const barW = Math.max(2, Math.min(18, (W - L - R) / points.length - 1));
  points.forEach((p, i) => {
    const h = (p.reviews / most) * (H - T - B) * 0.5;
    box.append(svg("rect", { x: x(times[i]) - barW / 2, y: H - B - h, width: barW, height: h, fill: "#c9d6ea",
      class: "bar", "data-reviews": p.reviews }));
  });
  const y = (share) => H - B - share * (H - T - B);
  const path = points.map((p, i) => (i ? "L" : "M") + x(times[i]).toFixed(1) + " " + y(p.negative_share).toFixed(1));
  box.append(svg("path", { d: path.join(" "), fill: "none", stroke: "#8a1c1c", "stroke-width": 2, class: "share" }));
  points.forEach((p, i) => box.append(svg("circle", { cx: x(times[i]), cy: y(p.negative_share), r: 2.5,
    fill: "#8a1c1c", class: "point" })));
  alerts.forEach((a) => {
    const t = Date.parse(a.at);
    if (t < t0 - 7 * 864e5 || t > t1 + 7 * 864e5) return;
    const mark = svg("line", { x1: x(t), x2: x(t), y1: T, y2: H - B, stroke: "#d00", "stroke-dasharray": "4 3",
      class: "alert-mark" });
    mark.append(svg("title", {}, a.scope + " at " + a.at));
    box.append(mark);
  });
  [0, 0.5, 1].forEach((s) => box.append(svg("text", { x: 5, y: y(s) + 4, "font-size": 11 }, (s * 100) + "%")));
  box.append(svg("text", { x: L, y: H - 10, "font-size": 11 }, points[0].start.slice(0, 10)));
  box.append(svg("text", { x: W - R - 70, y: H - 10, "font-size": 11 }, points[points.length - 1].start.slice(0, 10)));
}

function renderAlerts(alerts) {
  const body = $("alerts");
  body.replaceChildren();
  alerts.forEach((a) => {
    const tr = document.createElement("tr");
    [a.at.slice(0, 16).replace("T", " "), a.scope, (a.negative_share * 100).toFixed(0) + "%",
      (a.baseline_share * 100).toFixed(0) + "%", a.negatives + " / " + a.reviews, a.p_value.toExponential(1),
      a.delivered ? "delivered" : (a.attempts ? "failed: " + (a.delivery_error || "") : "not sent")]
      .forEach((v) => { const td = document.createElement("td"); td.textContent = v; tr.append(td); });
    body.append(tr);
  });
}

async function show() {
  const shop = $("shop").value;
  if (!shop) return;
  const params = new URLSearchParams({ interval: $("interval").value });
  const product = $("product").value.trim(), topic = $("topic").value.trim();
  if (product) params.set("product_id", product);
  if (topic) params.set("topic", topic);
  try {
    const [trend, listing] = await Promise.all([
      api("/shops/" + encodeURIComponent(shop) + "/sentiment?" + params),
      api("/shops/" + encodeURIComponent(shop) + "/alerts" + (product ? "?scope=" + encodeURIComponent("product:" + product) : "")),
    ]);
    const total = trend.points.reduce((n, p) => n + p.reviews, 0);
    $("trend-summary").textContent = total + " reviews in " + trend.points.length + " " + trend.interval +
      "s; labels from the " + trend.label_source + "; " + listing.alerts.length + " alerts";
    plot(trend.points, listing.alerts);
    renderAlerts(listing.alerts);
    say("");
  } catch (error) { say(error.message); }
}

async function init() {
  const hash = new URLSearchParams(window.location.hash.slice(1));
  if (hash.get("key")) { store.setItem("shoprank.key", hash.get("key")); history.replaceState(null, "", window.location.pathname); }
  $("key").value = key();
  try {
    const shops = await api("/shops");
    $("shop").replaceChildren(...shops.shops.map((s) => { const o = document.createElement("option"); o.textContent = s.name || s; o.value = s.name || s; return o; }));
  } catch (error) { say(error.message); return; }
  await show();
}

$("settings").addEventListener("submit", (event) => {
  event.preventDefault();
  store.setItem("shoprank.key", $("key").value.trim());
  show();
});
init();
