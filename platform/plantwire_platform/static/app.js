// Plantwire dashboard: plain JavaScript, no framework, no build step.
// Views are picked by the URL hash (#/, #/devices/<id>, #/apps, #/alarms); REST for state,
// the WebSocket /api/stream for live points (see docs/stream.md).
"use strict";

const CHART_WINDOW_S = 300; // the chart shows the last five minutes
const MAX_CHART_TAGS = 6;
const POLL_MS = 3000;
const COLORS = ["#0f766e", "#2563eb", "#d97706", "#db2777", "#7c3aed", "#65a30d"];
const NUMERIC = /^(Double|Float|S?Byte|U?Int(16|32|64)|Boolean)$/;

// ---- small DOM helpers ------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// Replace an element's children; arrays are flattened and null/false skipped, as in h().
function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

const STATE_CLASS = {
  online: "good", running: "good", good: "good",
  connecting: "warn", starting: "warn", uncertain: "warn", stopped: "warn",
  offline: "bad", failed: "bad", bad: "bad",
};
const pill = (state, text) => h("span", { class: `pill ${STATE_CLASS[state] || ""}` }, text || state);

const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 3 });
function fmtValue(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return Math.abs(v) >= 1e4 ? numberFormat.format(Math.round(v)) : numberFormat.format(v);
  if (typeof v === "object") return JSON.stringify(v); // arrays and structures (docs/wire.md)
  return String(v);
}

// A tag's value as a person reads it: an enumeration's name, a DateTime as a time (docs/wire.md).
function fmtTagValue(t, v) {
  if (v === null || v === undefined || !t) return fmtValue(v);
  if (t.enum && typeof v === "number" && t.enum[String(v)] !== undefined) return `${t.enum[String(v)]} (${v})`;
  if (t.data_type === "DateTime" && typeof v === "number") return new Date(v / 1000).toISOString();
  return fmtValue(v);
}

function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 2) return "just now";
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

function toast(text) {
  const t = h("div", { class: "toast", role: "status" }, text);
  document.body.append(t);
  setTimeout(() => t.remove(), 4000);
}

// ---- REST -------------------------------------------------------------------------------------

// Same-origin requests carry the session cookie; a changing one is JSON (the platform refuses other
// bodies, so a foreign page cannot forge one). A 401 means the session ended: log in again.
async function api(path, method = "GET") {
  let resp;
  const init = { method, headers: { Accept: "application/json" } };
  if (method !== "GET") {
    init.headers["Content-Type"] = "application/json";
    init.body = "{}";
  }
  try {
    resp = await fetch(path, init);
  } catch (err) {
    return { ok: false, status: 0, body: null, message: "the platform does not answer" };
  }
  if (resp.status === 401) {
    location.assign("/login");
    return { ok: false, status: 401, body: null, message: "not logged in" };
  }
  let body = null;
  try {
    body = await resp.json();
  } catch (err) {
    body = null;
  }
  const message = body && body.error ? body.error.message : `HTTP ${resp.status}`;
  return { ok: resp.ok, status: resp.status, body, message };
}

async function logOut() {
  await api("/api/logout", "POST");
  location.assign("/login");
}

const plural = (n, w) => `${n} ${w}${n === 1 ? "" : "s"}`;

// ---- live stream with reconnection --------------------------------------------------------------

const stream = {
  ws: null,
  patterns: [],         // [{device, tag}] the current view wants
  listeners: new Set(), // fn(points)
  delay: 500,
  everOpen: false,
  retryTimer: null,

  connect() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/stream`;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      const reconnected = this.everOpen;
      this.everOpen = true;
      this.delay = 500;
      for (const p of this.patterns) ws.send(JSON.stringify({ subscribe: p }));
      setConnState("live");
      if (reconnected) route(); // fetch what was missed while away
    };
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.points && msg.points.length) for (const fn of this.listeners) fn(msg.points);
      if (msg.dropped) console.warn("live stream: the page fell behind,", msg.dropped, "points dropped");
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      api("/api/whoami"); // a refused upgrade looks like any close: a 401 here sends us to /login
      const wait = this.delay * (0.8 + Math.random() * 0.4);
      this.delay = Math.min(this.delay * 2, 15000);
      setConnState("stale", wait);
      this.retryTimer = setTimeout(() => this.connect(), wait);
    };
  },

  // Replace the subscriptions: the view that is shown decides what is streamed.
  want(patterns) {
    const key = (p) => `${p.device}\u0000${p.tag}`;
    const next = new Map(patterns.map((p) => [key(p), p]));
    const open = this.ws && this.ws.readyState === WebSocket.OPEN;
    for (const p of this.patterns) if (open && !next.has(key(p))) this.ws.send(JSON.stringify({ unsubscribe: p }));
    for (const [k, p] of next) {
      if (open && !this.patterns.some((q) => key(q) === k)) this.ws.send(JSON.stringify({ subscribe: p }));
    }
    this.patterns = [...next.values()];
  },
};

let retryTicker = null;
function setConnState(state, waitMs) {
  const conn = document.getElementById("conn");
  conn.dataset.state = state;
  document.body.classList.toggle("stale", state === "stale");
  const banner = document.getElementById("stale-banner");
  banner.hidden = state !== "stale";
  clearInterval(retryTicker);
  if (state === "live") {
    document.getElementById("conn-text").textContent = "Live";
    return;
  }
  const until = Date.now() + (waitMs || 0);
  const tick = () => {
    const s = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    const text = s > 0 ? `Reconnecting in ${s} s…` : "Reconnecting…";
    document.getElementById("conn-text").textContent = "Stale";
    document.getElementById("stale-retry").textContent = text;
  };
  tick();
  retryTicker = setInterval(tick, 500);
}

// ---- router -----------------------------------------------------------------------------------

let cleanup = [];
function onLeave(fn) {
  cleanup.push(fn);
}
function every(ms, fn) {
  const id = setInterval(fn, ms);
  onLeave(() => clearInterval(id));
}
function listen(fn) {
  stream.listeners.add(fn);
  onLeave(() => stream.listeners.delete(fn));
}

let generation = 0;
async function route() {
  for (const fn of cleanup.splice(0)) fn();
  const gen = ++generation;
  const view = document.getElementById("view");
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const name = parts.length === 0 ? "overview" : parts[0];
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === (name === "devices" ? "overview" : name));
  }
  let render;
  if (name === "overview") render = () => overview();
  else if (name === "devices" && parts.length === 2) render = () => devicePage(parts[1]);
  else if (name === "apps" && parts.length === 1) render = () => appsPage();
  else if (name === "alarms" && parts.length === 1) render = () => alarmsPage();
  else render = async () => notFound();
  const content = await render();
  if (gen !== generation) return; // the user moved on while this view loaded
  fill(view, content);
}

function notFound() {
  stream.want([]);
  document.title = "Not found · Plantwire";
  return h("div", { class: "note error-note" },
    h("h2", {}, "There is no such page"),
    h("p", {}, `Nothing lives at ${location.hash}. `, h("a", { href: "#/" }, "Go to the overview"), "."));
}

// ---- alarms badge (all views) -------------------------------------------------------------------

async function activeAlarms() {
  const r = await api("/api/alarms?state=active");
  const badge = document.getElementById("alarm-count");
  if (!r.ok) {
    badge.hidden = true;
    return null;
  }
  const alarms = r.body.alarms.filter((a) => a.state === "active");
  badge.hidden = alarms.length === 0;
  badge.textContent = alarms.length;
  return alarms;
}

// ---- overview -----------------------------------------------------------------------------------

const OVERVIEW_PAGE = 25; // devices per overview page (the stream allows 32 subscriptions)
const overviewFilter = { q: "", state: "", gateway: "", offset: 0 }; // kept while moving between views

function devicesQuery(filter, limit, offset) {
  const params = new URLSearchParams({ limit: String(limit), offset: String(offset) });
  for (const key of ["q", "state", "gateway"]) if (filter[key]) params.set(key, filter[key]);
  return `/api/devices?${params}`;
}

async function overview() {
  document.title = "Overview · Plantwire";
  stream.want([]);
  const counts = new Map(); // device -> timestamps (ms) of points received in the last 5 s
  listen((points) => {
    const now = Date.now();
    for (const p of points) {
      if (!counts.has(p.device)) counts.set(p.device, []);
      counts.get(p.device).push(now);
    }
  });
  const rate = (device) => {
    const list = counts.get(device) || [];
    const cut = Date.now() - 5000;
    while (list.length && list[0] < cut) list.shift();
    return list.length / 5;
  };

  const head = h("div", {});
  const list = h("div", { "data-device-list": "" });
  const pager = h("div", { class: "pager" });
  let drawn = 0; // the newest draw wins when several overlap
  let timer = null;
  const refilter = (key) => (ev) => {
    overviewFilter[key] = ev.target.value.trim();
    overviewFilter.offset = 0;
    clearTimeout(timer);
    timer = setTimeout(draw, 250);
  };
  const search = h("input", { type: "search", placeholder: "Search device ids", "aria-label": "Search device ids",
    "data-filter": "q", value: overviewFilter.q, oninput: refilter("q") });
  const gatewayBox = h("input", { type: "search", placeholder: "Gateway", "aria-label": "Gateway",
    "data-filter": "gateway", value: overviewFilter.gateway, oninput: refilter("gateway") });
  const stateSelect = h("select", { "aria-label": "Device state", "data-filter": "state", onchange: refilter("state") },
    ["", "online", "connecting", "offline", "unknown"].map((s) =>
      h("option", { value: s, selected: s === overviewFilter.state }, s || "any state")));
  const toolbar = h("div", { class: "toolbar" }, search, stateSelect, gatewayBox);
  const view = h("div", { "data-view": "overview" }, head, toolbar, list, pager,
    h("section", { class: "card identifier-card" },
      h("div", { class: "card-head" }, h("h2", {}, "Resolve an identifier")), PlantwireIdentifiers.resolveBox()));
  const move = (offset) => () => {
    overviewFilter.offset = Math.max(0, offset);
    draw();
  };
  const draw = async () => {
    const mine = ++drawn;
    const filter = { ...overviewFilter };
    const [devs, all, online, health, alarms] = await Promise.all([
      api(devicesQuery(filter, OVERVIEW_PAGE, filter.offset)), api(devicesQuery({}, 0, 0)),
      api(devicesQuery({ state: "online" }, 0, 0)), api("/api/health"), activeAlarms()]);
    if (mine !== drawn) return;
    if (!devs.ok) {
      fill(head, h("div", { class: "note error-note" }, h("h2", {}, "The platform does not answer"),
        h("p", {}, devs.message)));
      fill(list);
      fill(pager);
      return;
    }
    const { devices, total } = devs.body;
    if (devices.length === 0 && filter.offset > 0 && total > 0) { // the list shrank under this page
      overviewFilter.offset = Math.floor((total - 1) / OVERVIEW_PAGE) * OVERVIEW_PAGE;
      draw();
      return;
    }
    stream.want(devices.map((d) => ({ device: d.id, tag: "*" })));
    const gateways = new Map();
    for (const d of devices) {
      if (!gateways.has(d.gateway)) gateways.set(d.gateway, { state: d.gateway_state, devices: [] });
      gateways.get(d.gateway).devices.push(d);
    }
    const allCount = all.ok ? all.body.total : total;
    const onlineCount = online.ok ? online.body.total : "—";
    const pageRate = devices.reduce((s, d) => s + rate(d.id), 0);
    const points = health.ok ? health.body.points : null;
    const filtered = filter.q || filter.state || filter.gateway;
    fill(head,
      h("div", { class: "page-head" },
        h("div", {}, h("h1", {}, "Plant overview"),
          h("div", { class: "sub" }, plural(allCount, "device")))),
      h("div", { class: "stats" },
        stat("Devices online", onlineCount, `/ ${allCount}`),
        stat("Gateways on this page", gateways.size),
        stat("Values / s on this page", h("span", { class: "rate", "data-total-rate": "" }, numberFormat.format(Math.round(pageRate)))),
        stat("Active alarms", alarms === null ? "—" : alarms.length, null, alarms && alarms.length > 0),
        stat("Stored points", points === null ? "—" : numberFormat.format(points))));
    fill(list,
      devices.length === 0
        ? h("div", { class: "note" }, filtered
          ? [h("h2", {}, "No device matches"), h("p", {}, "Change the search or the filters above.")]
          : [h("h2", {}, "No devices yet"),
            h("p", {}, "Start a gateway: its devices appear here as soon as it reports them.")])
        : [...gateways.entries()].map(([id, g]) => gatewayCard(id, g, rate, alarms)));
    const first = devices.length ? filter.offset + 1 : 0;
    fill(pager,
      h("button", { type: "button", "data-page": "prev", disabled: filter.offset === 0,
        onclick: move(filter.offset - OVERVIEW_PAGE) }, "‹ Previous"),
      h("span", { class: "muted", "data-page-range": "" },
        `${first}–${filter.offset + devices.length} of ${total}${filtered ? " matching" : ""}`),
      h("button", { type: "button", "data-page": "next", disabled: filter.offset + devices.length >= total,
        onclick: move(filter.offset + OVERVIEW_PAGE) }, "Next ›"));
  };
  await draw();
  every(POLL_MS, draw);
  return view;
}

function stat(label, value, unit, alert) {
  return h("div", { class: `stat${alert ? " alert" : ""}` },
    h("div", { class: "label" }, label),
    h("div", { class: "value" }, value, unit ? h("small", {}, " ", unit) : null));
}

function gatewayCard(id, g, rate, alarms) {
  const alarmCount = (device) => (alarms || []).filter((a) => a.device === device).length;
  return h("section", { class: "card", "data-gateway": id },
    h("div", { class: "card-head" },
      h("h2", {}, "Gateway ", h("span", { class: "mono" }, id)), pill(g.state, `gateway ${g.state}`)),
    h("div", { class: "table-wrap" }, h("table", { class: "data" },
      h("thead", {}, h("tr", {},
        h("th", {}, "Device"), h("th", {}, "State"), h("th", { class: "num" }, "Tags"),
        h("th", { class: "num" }, "Values/s"), h("th", { class: "num" }, "Alarms"),
        h("th", { class: "hide-sm" }, "Last data"), h("th", { class: "hide-sm" }, "Endpoint"))),
      h("tbody", {}, g.devices.sort((a, b) => a.id.localeCompare(b.id)).map((d) =>
        h("tr", { "data-device": d.id },
          h("td", {}, h("a", { href: `#/devices/${encodeURIComponent(d.id)}` }, h("b", {}, d.id)),
            d.error ? h("span", { class: "desc" }, d.error) : null),
          h("td", {}, pill(d.state)),
          h("td", { class: "num" }, d.tag_count),
          h("td", { class: "num rate" }, numberFormat.format(rate(d.id))),
          h("td", { class: "num" }, alarms === null ? "—" : alarmCount(d.id) || "–"),
          h("td", { class: "hide-sm muted" }, ago(d.last_data)),
          h("td", { class: "hide-sm mono muted" }, d.endpoint || "—")))))));
}

// ---- device page --------------------------------------------------------------------------------

const chartSelection = new Map(); // device -> Set of tags (kept while moving between views)

async function devicePage(id) {
  document.title = `${id} · Plantwire`;
  stream.want([{ device: id, tag: "*" }]);
  const dev = await api(`/api/devices/${encodeURIComponent(id)}`);
  const [tagsResp, latest] = await Promise.all([
    api(`/api/devices/${encodeURIComponent(id)}/tags`),
    api(`/api/latest?device=${encodeURIComponent(id)}`),
  ]);
  if (dev.status === 404) {
    stream.want([]);
    const all = await api("/api/devices?limit=12");
    const known = all.ok ? all.body.devices.map((d) => d.id) : [];
    const count = all.ok ? all.body.total : 0;
    return h("div", { class: "note error-note", "data-error": "unknown-device" },
      h("h2", {}, `Unknown device “${id}”`),
      h("p", {}, "The platform has never heard of a device with this id. ",
        known.length ? `It knows ${count}: ${known.join(", ")}${count > known.length ? ", …" : ""}.` : ""),
      h("p", {}, h("a", { href: "#/" }, "Back to the overview")));
  }
  if (!dev.ok || !tagsResp.ok) {
    return h("div", { class: "note error-note" }, h("h2", {}, "Could not load the device"), h("p", {}, dev.message));
  }
  const d = dev.body;
  const tags = tagsResp.body.tags;
  const values = new Map((latest.ok ? latest.body.values : []).map((v) => [v.tag, v]));
  // Derived series (from apps) carry no OPC UA type: chart them when their value is a number.
  // Arrays (value_rank >= 0) and enumerations are listed, not charted.
  const isNumeric = (t) => (t.value_rank ?? -1) < 0 && !t.enum
    && (NUMERIC.test(t.data_type || "") || (!t.data_type && typeof values.get(t.tag)?.value === "number"));
  const chartable = tags.filter(isNumeric);
  if (!chartSelection.has(id)) chartSelection.set(id, new Set(chartable.slice(0, 2).map((t) => t.tag)));
  const selected = chartSelection.get(id);

  const cells = new Map(); // tag -> {value, quality, ts}
  const rows = tags.map((t) => {
    const v = values.get(t.tag);
    const c = {
      value: h("span", { class: "live-value" }, v ? fmtTagValue(t, v.value) : "—"),
      quality: h("td", {}, v ? pill(v.quality) : h("span", { class: "muted" }, "no value")),
      ts: h("td", { class: "hide-sm muted" }, v ? ago(v.ts) : "—"),
      last: v ? v.ts : null,
      tag: t,
    };
    cells.set(t.tag, c);
    const box = isNumeric(t)
      ? h("input", {
        type: "checkbox", "aria-label": `chart ${t.tag}`, "data-chart-tag": t.tag,
        checked: selected.has(t.tag),
        onchange: (ev) => {
          if (ev.target.checked && selected.size >= MAX_CHART_TAGS) {
            ev.target.checked = false;
            toast(`The chart shows at most ${MAX_CHART_TAGS} tags`);
            return;
          }
          ev.target.checked ? selected.add(t.tag) : selected.delete(t.tag);
          chart.reset([...selected]);
        },
      })
      : null;
    return h("tr", { "data-tag": t.tag },
      h("td", {}, box),
      h("td", { class: "tag-name" }, t.tag, t.writable ? h("span", { class: "badge", title: "Writable: a setpoint or command input" }, "writable") : null,
        t.description ? h("span", { class: "desc" }, t.description) : null),
      h("td", { class: "num" }, c.value),
      h("td", { class: "muted" }, t.unit || ""),
      c.quality,
      c.ts,
      h("td", { class: "hide-sm muted mono" }, t.data_type || ""));
  });

  const chartBox = h("div", { class: "chart", "data-chart": "" });
  const chart = new LiveChart(chartBox, id, new Map(tags.map((t) => [t.tag, t])));
  onLeave(() => chart.destroy());

  listen((points) => {
    for (const p of points) {
      if (p.device !== id) continue;
      const c = cells.get(p.tag);
      if (c) {
        c.value.textContent = fmtTagValue(c.tag, p.value);
        c.quality.replaceChildren(pill(p.quality));
        c.last = p.ts;
      }
      chart.add(p);
    }
  });
  every(1000, () => {
    for (const c of cells.values()) if (c.last) c.ts.textContent = ago(c.last);
  });
  every(POLL_MS, async () => {
    const r = await api(`/api/devices/${encodeURIComponent(id)}`);
    if (r.ok) state.replaceChildren(pill(r.body.state));
  });

  const state = h("span", {}, pill(d.state));
  const page = h("div", { "data-view": "device", "data-device": id },
    h("div", { class: "page-head" },
      h("div", {},
        h("div", { class: "crumbs" }, h("a", { href: "#/" }, "Overview"), " / ", d.gateway),
        h("h1", {}, d.id, " ", state)),
      h("div", { class: "meta" },
        h("span", {}, "Gateway ", h("b", {}, d.gateway)),
        h("span", {}, "Endpoint ", h("b", { class: "mono" }, d.endpoint || "—")),
        h("span", {}, h("b", {}, tags.length), " tags")),
      PlantwireIdentifiers.panel(d)),
    d.error ? h("div", { class: "note error-note" }, d.error) : null,
    h("section", { class: "card" },
      h("div", { class: "card-head" }, h("h2", {}, "Live chart"),
        h("span", { class: "muted" }, `last ${CHART_WINDOW_S / 60} minutes · tick tags below to chart them`)),
      chartBox),
    h("section", { class: "card" },
      h("div", { class: "card-head" }, h("h2", {}, "Tags")),
      h("div", { class: "table-wrap" }, h("table", { class: "data" },
        h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, "Tag"), h("th", { class: "num" }, "Value"),
          h("th", {}, "Unit"), h("th", {}, "Quality"), h("th", { class: "hide-sm" }, "Updated"),
          h("th", { class: "hide-sm" }, "Type"))),
        h("tbody", {}, rows)))));
  chart.reset([...selected]);
  return page;
}

// A uPlot chart of a few tags: history from /api/series, then points from the stream.
class LiveChart {
  constructor(el, device, tagInfo) {
    this.el = el;
    this.device = device;
    this.tagInfo = tagInfo;
    this.tags = [];
    this.data = new Map(); // tag -> {xs: [], ys: []} (seconds, values)
    this.plot = null;
    this.pending = false;
    this.loading = 0;
    this.received = 0; // points taken from the stream
    this.resize = () => this.plot && this.plot.setSize(this.size());
    window.addEventListener("resize", this.resize);
  }

  size() {
    return { width: Math.max(280, this.el.clientWidth - 16), height: 300 };
  }

  async reset(tags) {
    this.tags = tags;
    const load = ++this.loading;
    this.data = new Map(tags.map((t) => [t, { xs: [], ys: [] }]));
    const histories = await Promise.all(tags.map((t) => api(
      `/api/series?device=${encodeURIComponent(this.device)}&tag=${encodeURIComponent(t)}&start=-${CHART_WINDOW_S}s&limit=20000`)));
    if (load !== this.loading) return;
    tags.forEach((t, i) => {
      const r = histories[i];
      if (!r.ok) return;
      const s = this.data.get(t);
      const live = { xs: s.xs, ys: s.ys }; // points streamed while the history loaded
      s.xs = r.body.points.map((p) => Date.parse(p.ts) / 1000);
      s.ys = r.body.points.map((p) => num(p.value));
      const last = s.xs.length ? s.xs[s.xs.length - 1] : -Infinity;
      live.xs.forEach((x, j) => { if (x > last) { s.xs.push(x); s.ys.push(live.ys[j]); } });
    });
    this.build();
  }

  build() {
    if (this.plot) this.plot.destroy();
    this.plot = null;
    this.el.replaceChildren();
    if (this.tags.length === 0) {
      this.el.append(h("div", { class: "chart-empty" }, "Tick a numeric tag below to chart it."));
      return;
    }
    const units = [...new Set(this.tags.map((t) => this.unit(t)))];
    const series = [{}].concat(this.tags.map((t, i) => ({
      label: `${t}${this.tagInfo.get(t)?.unit ? ` (${this.tagInfo.get(t).unit})` : ""}`,
      stroke: COLORS[i % COLORS.length],
      width: 1.75,
      scale: this.unit(t),
      spanGaps: true,
      points: { show: false },
      value: (u, v) => (v === null || v === undefined ? "—" : fmtValue(v)),
    })));
    const axes = [{ grid: { stroke: "#eef1f4" } }];
    units.slice(0, 2).forEach((unit, i) => axes.push({
      scale: unit, side: i === 0 ? 3 : 1, label: unit === "_" ? "" : unit,
      grid: { show: i === 0, stroke: "#eef1f4" }, size: 60,
    }));
    const scales = { x: { time: true } };
    for (const u of units) scales[u] = { auto: true };
    this.plot = new uPlot({ ...this.size(), series, axes, scales, cursor: { drag: { x: false, y: false } } }, this.aligned(), this.el);
    this.mark();
  }

  // How many points the chart holds, for people and tests inspecting the page.
  mark() {
    let n = 0;
    for (const s of this.data.values()) n += s.xs.length;
    this.el.dataset.points = n;
    this.el.dataset.received = this.received;
  }

  unit(tag) {
    return this.tagInfo.get(tag)?.unit || "_";
  }

  add(p) {
    const s = this.data.get(p.tag);
    if (!s) return;
    const x = Date.parse(p.ts) / 1000;
    if (s.xs.length && x <= s.xs[s.xs.length - 1]) return;
    s.xs.push(x);
    s.ys.push(num(p.value));
    this.received++;
    if (!this.pending) {
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        if (this.plot) this.plot.setData(this.aligned());
        this.mark();
      });
    }
  }

  // uPlot wants one x array shared by all series: join the tags' own timestamps.
  aligned() {
    const cut = Date.now() / 1000 - CHART_WINDOW_S;
    const tables = [];
    for (const t of this.tags) {
      const s = this.data.get(t);
      let i = 0;
      while (i < s.xs.length && s.xs[i] < cut) i++;
      if (i) { s.xs.splice(0, i); s.ys.splice(0, i); }
      tables.push([s.xs, s.ys]);
    }
    if (tables.every((tb) => tb[0].length === 0)) return [[], ...this.tags.map(() => [])];
    return uPlot.join(tables);
  }

  destroy() {
    window.removeEventListener("resize", this.resize);
    this.loading++;
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }
}

function num(v) {
  if (typeof v === "boolean") return v ? 1 : 0;
  // A UInt64 above 2^63-1 is its exact decimal string; a chart can only draw it approximately.
  if (typeof v === "string" && /^[0-9]{1,20}$/.test(v)) return Number(v);
  return typeof v === "number" ? v : null;
}

// ---- apps ---------------------------------------------------------------------------------------

function unavailable(what, r) {
  return h("div", { class: "note", "data-unavailable": what },
    h("h2", {}, `${what[0].toUpperCase()}${what.slice(1)} are not available`),
    h("p", {}, r.status === 404
      ? `This platform has no ${what} API (GET /api/${what} answered 404).`
      : `GET /api/${what} failed: ${r.message}.`));
}

async function appsPage() {
  document.title = "Apps · Plantwire";
  stream.want([]);
  activeAlarms();
  const root = h("div", { "data-view": "apps" });
  const draw = async () => {
    const r = await api("/api/apps");
    const head = h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Apps"),
      h("div", { class: "sub" }, "Plug-ins that run inside the platform and act on live data")));
    if (!r.ok) {
      fill(root, head, unavailable("apps", r));
      return;
    }
    const apps = r.body.apps;
    fill(root, head, apps.length === 0
      ? h("div", { class: "note" }, h("h2", {}, "No apps installed"))
      : h("div", { class: "apps" }, apps.map((a) => appCard(a, draw))));
  };
  await draw();
  every(POLL_MS, draw);
  return root;
}

function appCard(a, redraw) {
  const act = (action) => async (ev) => {
    ev.target.disabled = true;
    const r = await api(`/api/apps/${encodeURIComponent(a.id)}/${action}`, "POST");
    if (!r.ok) toast(`Could not ${action} ${a.name}: ${r.message}`);
    await redraw();
  };
  const c = a.counters || {};
  const broken = a.status === "failed" && !a.enabled; // it never loaded (bad manifest or code)
  const counter = (k, label) => h("div", { class: "counter" }, h("div", { class: "n" }, numberFormat.format(c[k] ?? 0)),
    h("div", { class: "k" }, label));
  return h("section", { class: "card app", "data-app": a.id, "data-status": a.status },
    h("div", { class: "card-head" },
      h("div", {}, h("h2", {}, a.name), h("div", { class: "muted mono" }, `${a.id} · v${a.version}`)),
      pill(a.status)),
    h("div", { class: "card-body" },
      h("div", { class: "counters" },
        counter("points_in", "in"), counter("emitted", "emitted"), counter("alarms", "alarms"),
        counter("errors", "errors"), counter("drops", "drops")),
      a.error ? h("div", { class: "error" }, a.error) : null,
      broken
        ? h("div", { class: "note" }, "This app cannot be loaded: fix it, then restart the platform.")
        : h("div", { class: "actions" },
          a.enabled
            ? h("button", { class: "danger", "data-action": "disable", onclick: act("disable") }, "Disable")
            : h("button", { class: "primary", "data-action": "enable", onclick: act("enable") }, "Enable"),
          h("button", { "data-action": "restart", onclick: act("restart"), disabled: !a.enabled }, "Restart"))));
}

// ---- alarms -------------------------------------------------------------------------------------

async function alarmsPage() {
  document.title = "Alarms · Plantwire";
  stream.want([]);
  const root = h("div", { "data-view": "alarms" });
  const draw = async () => {
    activeAlarms();
    const r = await api("/api/alarms?state=all");
    const head = h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Alarms"),
      h("div", { class: "sub" }, "Raised by apps; acknowledge to show someone is on it")));
    if (!r.ok) {
      fill(root, head, unavailable("alarms", r));
      return;
    }
    const alarms = r.body.alarms.slice().sort((a, b) => (b.raised_at || "").localeCompare(a.raised_at || ""));
    const active = alarms.filter((a) => a.state === "active");
    const recent = alarms.filter((a) => a.state !== "active").slice(0, 100);
    fill(root, head,
      alarmTable("Active", active, draw, "No active alarms: all quiet."),
      alarmTable("Recent", recent, draw, "Nothing cleared recently."));
  };
  await draw();
  every(POLL_MS, draw);
  return root;
}

function alarmTable(title, alarms, redraw, empty) {
  const ack = (a) => async (ev) => {
    ev.target.disabled = true;
    const r = await api(`/api/alarms/${encodeURIComponent(a.id)}/ack`, "POST");
    if (!r.ok) toast(`Could not acknowledge: ${r.message}`);
    await redraw();
  };
  return h("section", { class: "card", "data-alarms": title.toLowerCase() },
    h("div", { class: "card-head" }, h("h2", {}, title, " ", h("span", { class: "muted" }, `(${alarms.length})`))),
    alarms.length === 0 ? h("div", { class: "empty" }, empty) : h("div", { class: "table-wrap" }, h("table", { class: "data" },
      h("thead", {}, h("tr", {}, h("th", {}, "Severity"), h("th", {}, "Message"), h("th", {}, "Device / tag"),
        h("th", { class: "hide-sm" }, "App"), h("th", {}, "Raised"), h("th", { class: "hide-sm" }, "Cleared"),
        h("th", { class: "num" }, ""))),
      h("tbody", {}, alarms.map((a) => h("tr", { "data-alarm": a.id },
        h("td", { class: `sev-${String(a.severity).toLowerCase()}` }, a.severity),
        h("td", {}, a.message),
        h("td", { class: "mono" }, a.device ? h("a", { href: `#/devices/${encodeURIComponent(a.device)}` }, a.device) : "—",
          a.tag ? ` · ${a.tag}` : ""),
        h("td", { class: "hide-sm muted" }, a.app),
        h("td", { class: "muted", title: a.raised_at }, ago(a.raised_at)),
        h("td", { class: "hide-sm muted" }, a.cleared_at ? ago(a.cleared_at) : "—"),
        h("td", { class: "num" }, a.acked
          ? h("span", { class: "muted", title: a.acked_at || "" }, `acked${a.acked_by ? ` by ${a.acked_by}` : ""}`)
          : h("button", { "data-action": "ack", onclick: ack(a) }, "Acknowledge"))))))));
}

// ---- start --------------------------------------------------------------------------------------

window.addEventListener("hashchange", route);
document.getElementById("logout").addEventListener("click", logOut);
stream.connect();
route();
