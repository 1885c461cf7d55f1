// Identifiers on the dashboard: a device's identifier with its QR code, and a resolve box.
// A classic script (like app.js): include it before app.js with
//   <script src="/static/identifiers.js"></script>
// and call, on the device page,   PlantwireIdentifiers.panel(device)   (device = GET /api/devices/{d},
// whose `identifier` field names the handle) and anywhere   PlantwireIdentifiers.resolveBox().
// Both return a DOM element. Text goes in with textContent only, never as HTML.
"use strict";

(function () {
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children.flat()) {
      if (c != null) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function handlePath(handle) {
    // prefix/suffix -> /api/handles/prefix/suffix, each part escaped
    const cut = handle.indexOf("/");
    return `/api/handles/${encodeURIComponent(handle.slice(0, cut))}/${encodeURIComponent(handle.slice(cut + 1))}`;
  }

  function valueText(v) {
    const data = v.data && typeof v.data === "object" ? v.data.value : v.data;
    return typeof data === "string" ? data : JSON.stringify(data);
  }

  function valuesTable(values) {
    return el("table", { class: "identifier-values" },
      el("thead", {}, el("tr", {}, el("th", {}, "Index"), el("th", {}, "Type"), el("th", {}, "Value"))),
      el("tbody", {}, values.map((v) =>
        el("tr", { "data-type": v.type }, el("td", {}, v.index), el("td", {}, v.type), el("td", {}, valueText(v))))));
  }

  async function resolve(handle) {
    const resp = await fetch(handlePath(handle.replace(/^hdl:/, "")), { headers: { Accept: "application/json" } });
    let body = {};
    try { body = await resp.json(); } catch (e) { /* not JSON: reported below */ }
    if (resp.ok && body.responseCode === 1) return { ok: true, body };
    const why = { 100: "not found", 102: "not a valid identifier", 2: "the upstream resolver failed" };
    return { ok: false, message: why[body.responseCode] || body.message || `HTTP ${resp.status}` };
  }

  function panel(device) {
    const id = device && device.identifier;
    if (!id) return el("div", { class: "identifier-panel empty" }, "No identifier yet");
    return el("div", { class: "identifier-panel", "data-identifier": id },
      el("h3", {}, "Identifier"),
      el("code", { class: "identifier" }, id),
      el("img", { class: "identifier-qr", src: `${handlePath(id)}/qr.svg`, alt: `QR code of ${id}`, width: "132" }),
      el("a", { href: handlePath(id) }, "Handle record (JSON)"));
  }

  function resolveBox() {
    const input = el("input", { type: "text", name: "identifier", placeholder: "prefix/suffix", size: "36" });
    const out = el("div", { class: "identifier-result", "aria-live": "polite" });
    const form = el("form", { class: "identifier-resolve" }, input, el("button", { type: "submit" }, "Resolve"), out);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const handle = input.value.trim();
      out.replaceChildren(el("span", {}, "Resolving…"));
      if (!handle.includes("/")) {
        out.replaceChildren(el("span", { class: "error" }, "An identifier looks like prefix/suffix"));
        return;
      }
      const r = await resolve(handle);
      out.replaceChildren(r.ok
        ? el("div", {}, el("b", {}, r.body.handle), valuesTable(r.body.values))
        : el("span", { class: "error" }, `${handle}: ${r.message}`));
    });
    return form;
  }

  window.PlantwireIdentifiers = { panel, resolveBox, resolve };
})();
