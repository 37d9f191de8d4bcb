"""The console's stylesheet and keyboard script, served from /static/ (no inline script: the pages' Content
Security Policy allows scripts from this server only). Nothing to build or download."""

from __future__ import annotations

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #0f172a; background: #f8fafc; }
header { display: flex; justify-content: space-between; padding: 8px 16px; background: #0f172a; color: #e2e8f0; }
header a { color: #fff; font-weight: 600; text-decoration: none; }
main { padding: 12px 16px; max-width: 1200px; }
h1 { font-size: 20px; margin: 8px 0; } h2 { font-size: 15px; margin: 16px 0 6px; }
table { border-collapse: collapse; background: #fff; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e2e8f0; vertical-align: middle; }
th { background: #f1f5f9; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.selected td { background: #dbeafe; } tr.current td { background: #fef9c3; }
tr[data-href] { cursor: pointer; }
.filters label { margin-right: 10px; } .filters { margin: 8px 0; }
.counts a { display: inline-block; margin: 4px 8px 8px 0; padding: 2px 8px; border-radius: 10px;
  background: #e2e8f0; color: #0f172a; text-decoration: none; }
.counts a[aria-current] { background: #1e293b; color: #fff; }
.sev, .status { padding: 1px 6px; border-radius: 8px; font-size: 12px; }
.sev.high { background: #fee2e2; color: #991b1b; } .sev.medium { background: #ffedd5; color: #9a3412; }
.sev.low { background: #e0f2fe; color: #075985; }
.status.pending { background: #f1f5f9; } .status.confirmed { background: #dcfce7; color: #166534; }
.status.dismissed { background: #e5e7eb; color: #374151; }
.notice { background: #dcfce7; padding: 6px 10px; border-radius: 4px; }
.error { background: #fee2e2; padding: 6px 10px; border-radius: 4px; }
.muted { color: #64748b; } .pct { font-weight: 600; margin: 0 6px; } svg { vertical-align: middle; }
.note { display: block; margin-bottom: 6px; } .note textarea { width: 100%; max-width: 600px; display: block; }
button { padding: 4px 14px; border-radius: 4px; border: 1px solid #94a3b8; background: #fff; cursor: pointer; }
button.confirm { background: #dc2626; color: #fff; border-color: #b91c1c; }
.keys { color: #64748b; font-size: 12px; margin-top: 16px; }
"""

JS = """
(function () {
  "use strict";
  function go(selector) {
    var link = document.querySelector(selector);
    if (link) { window.location.href = link.getAttribute("href"); }
  }
  function press(id) {
    var button = document.getElementById(id);
    if (button) { button.click(); }
  }
  function queueKey(key) {
    var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-href]"));
    if (!rows.length) { return false; }
    var at = rows.findIndex(function (row) { return row.classList.contains("selected"); });
    if (key === "j" || key === "k") {
      var next = at < 0 ? 0 : Math.max(0, Math.min(rows.length - 1, at + (key === "j" ? 1 : -1)));
      if (at >= 0) { rows[at].classList.remove("selected"); }
      rows[next].classList.add("selected");
      rows[next].scrollIntoView({ block: "nearest" });
      return true;
    }
    if ((key === "o" || key === "Enter") && at >= 0) {
      window.location.href = rows[at].dataset.href;
      return true;
    }
    return false;
  }
  function flagKey(key) {
    var actions = {
      j: function () { go("a#next"); }, k: function () { go("a#prev"); }, u: function () { go("a#back"); },
      c: function () { press("confirm"); }, d: function () { press("dismiss"); }
    };
    if (!actions[key]) { return false; }
    actions[key]();
    return true;
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var target = event.target;
    if (target && target.closest && target.closest("input, textarea, select")) { return; }
    var page = document.body.dataset.page;
    var handled = page === "queue" ? queueKey(event.key) : page === "flag" ? flagKey(event.key) : false;
    if (handled) { event.preventDefault(); }
  });
  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest("tr[data-href]");
    if (row && !event.target.closest("a")) { window.location.href = row.dataset.href; }
  });
})();
"""
