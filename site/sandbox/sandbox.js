// MCP Apps sandbox proxy (SEP-1865): the middle frame between the explorer (the host) and an app.
//
// It runs on an origin of its own (a second port of the demo server, or a second static host).
// 1. It tells its parent `ui/notifications/sandbox-proxy-ready`.
// 2. The host answers `ui/notifications/sandbox-resource-ready` {html, csp, permissions}: the app is
//    loaded into an inner iframe (srcdoc, sandbox="allow-scripts allow-forms", never
//    allow-same-origin: the app's origin is opaque). The CSP built from `csp` is written into the
//    app's HTML as <meta http-equiv> too, so a static copy of this page (no CSP header) enforces it.
// 3. Every other message is relayed: from the parent (checked origin) to the app, and from the app
//    (checked source) to the parent. Messages named `ui/notifications/sandbox-*` are not relayed.
(function () {
  "use strict";

  var KEYS = ["connectDomains", "resourceDomains", "frameDomains", "baseUriDomains"];
  var SOURCE = /^(https?|wss?):\/\/((\*\.)?[A-Za-z0-9][A-Za-z0-9-]{0,62}(\.[A-Za-z0-9][A-Za-z0-9-]{0,62})*|\[[0-9A-Fa-f:.]+\])(:(\d{1,5}|\*))?\/?$/;
  var DEFAULT_CSP = [
    "default-src 'none'",
    "script-src 'self' 'unsafe-inline'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "media-src 'self' data:",
    "connect-src 'none'",
    "frame-src 'none'",
    "object-src 'none'",
    "base-uri 'self'"
  ].join("; ");
  var PERMISSIONS = { camera: "camera", microphone: "microphone", geolocation: "geolocation", clipboardWrite: "clipboard-write" };

  var params = new URLSearchParams(window.location.search);
  var inner = null;
  var loaded = false;

  function fail(text) {
    var box = document.getElementById("sandbox-error");
    box.textContent = text;
    box.hidden = false;
    console.error("sandbox proxy: " + text);
  }

  // The host's origin: ?parent=ORIGIN (checked against the browser's view of the embedder when it has one).
  function parentOrigin() {
    var given = params.get("parent") || "";
    var seen = window.location.ancestorOrigins && window.location.ancestorOrigins.length
      ? window.location.ancestorOrigins[0] : "";
    var origin = given || seen;
    if (!/^https?:\/\/[^\/\s]+$/.test(origin)) { return ""; }
    if (seen && seen !== origin) { return ""; }
    if (origin === window.location.origin) { return ""; }  // the spec: host and sandbox origins differ
    return origin;
  }

  function checkedCsp(raw) {
    if (raw === undefined || raw === null) { return null; }
    if (typeof raw !== "object" || Array.isArray(raw)) { throw new Error("the CSP must be an object of domain lists"); }
    var out = {};
    KEYS.forEach(function (key) {
      var list = raw[key];
      if (list === undefined || list === null) { return; }
      if (!Array.isArray(list) || list.length > 32) { throw new Error(key + " must be a list of at most 32 origins"); }
      out[key] = list.map(function (item) {
        if (typeof item !== "string" || !SOURCE.test(item) || item.length > 260) {
          throw new Error(key + ": " + JSON.stringify(item) + " is not an http(s)/ws(s) origin");
        }
        return item.replace(/\/$/, "");
      });
    });
    return out;
  }

  function buildCsp(csp) {
    if (csp === null) { return DEFAULT_CSP; }
    function extra(key) { return (csp[key] || []).map(function (s) { return " " + s; }).join(""); }
    var resources = extra("resourceDomains");
    var frames = csp.frameDomains || [];
    var bases = csp.baseUriDomains || [];
    return [
      "default-src 'none'",
      "script-src 'self' 'unsafe-inline'" + resources,
      "style-src 'self' 'unsafe-inline'" + resources,
      "connect-src 'self'" + extra("connectDomains"),
      "img-src 'self' data:" + resources,
      "font-src 'self'" + resources,
      "media-src 'self' data:" + resources,
      frames.length ? "frame-src " + frames.join(" ") : "frame-src 'none'",
      "object-src 'none'",
      bases.length ? "base-uri " + bases.join(" ") : "base-uri 'self'"
    ].join("; ");
  }

  function withMeta(html, policy) {
    var meta = '<meta http-equiv="Content-Security-Policy" content="' + policy.replace(/"/g, "&quot;") + '">';
    var doctype = /^\s*<!doctype[^>]*>/i.exec(html);
    if (doctype) { return doctype[0] + meta + html.slice(doctype[0].length); }
    return meta + html;
  }

  var host = parentOrigin();
  if (!host) {
    fail("This page is the MCP Apps sandbox proxy: it only works inside a host page on another origin (?parent=ORIGIN).");
    return;
  }

  function toHost(message) { window.parent.postMessage(message, host); }

  function load(p) {
    if (loaded) { return; }
    if (!p || typeof p.html !== "string") { fail("sandbox-resource-ready without html"); return; }
    var csp;
    try { csp = checkedCsp(p.csp); } catch (error) { fail("refused the app: " + error.message); return; }
    loaded = true;
    inner = document.createElement("iframe");
    inner.setAttribute("sandbox", "allow-scripts allow-forms");
    inner.setAttribute("title", "MCP App");
    var allow = [];
    var perms = p.permissions && typeof p.permissions === "object" ? p.permissions : {};
    Object.keys(PERMISSIONS).forEach(function (key) { if (perms[key]) { allow.push(PERMISSIONS[key]); } });
    if (allow.length) { inner.setAttribute("allow", allow.join("; ")); }
    inner.srcdoc = withMeta(p.html, buildCsp(csp));
    document.body.appendChild(inner);
  }

  window.addEventListener("message", function (event) {
    var m = event.data;
    if (!m || typeof m !== "object" || m.jsonrpc !== "2.0") { return; }
    var method = typeof m.method === "string" ? m.method : "";
    if (event.source === window.parent && event.origin === host) {
      if (method === "ui/notifications/sandbox-resource-ready") { load(m.params); return; }
      if (method.indexOf("ui/notifications/sandbox-") === 0) { return; }
      if (inner && inner.contentWindow) { inner.contentWindow.postMessage(m, "*"); }  // opaque origin: "*"
      return;
    }
    if (inner && event.source === inner.contentWindow) {
      if (method.indexOf("ui/notifications/sandbox-") === 0) { return; }
      toHost(m);
    }
    // anything else (another frame, a wrong origin) is dropped
  });

  toHost({ jsonrpc: "2.0", method: "ui/notifications/sandbox-proxy-ready", params: {} });
})();
