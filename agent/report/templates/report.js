// The report's only script: filters, search, ordering, expand/collapse, print.
// It reads data-* attributes and text; it never builds HTML from page content.
(function () {
  "use strict";
  var list = document.getElementById("checks");
  var form = document.getElementById("filters");
  if (!list || !form) { return; }
  var rows = Array.prototype.slice.call(list.querySelectorAll("details.check"));
  var status = document.getElementById("f-status");
  var severity = document.getElementById("f-severity");
  var kind = document.getElementById("f-kind");
  var text = document.getElementById("f-text");
  var order = document.getElementById("f-order");
  var shown = document.getElementById("shown");
  form.hidden = false;

  function statusMatches(row) {
    var want = status.value;
    var have = row.getAttribute("data-status");
    if (want === "failing") { return have === "fail" || have === "error"; }
    return !want || have === want;
  }

  function apply() {
    var query = text.value.trim().toLowerCase();
    var visible = 0;
    rows.forEach(function (row) {
      var ok = statusMatches(row) &&
        (!severity.value || row.getAttribute("data-severity") === severity.value) &&
        (!kind.value || row.getAttribute("data-kind") === kind.value) &&
        (!query || row.textContent.toLowerCase().indexOf(query) !== -1);
      row.hidden = !ok;
      if (ok) { visible += 1; }
    });
    shown.textContent = visible + " of " + rows.length + " checks shown";
  }

  function sort() {
    var key = "data-" + order.value;
    rows.slice().sort(function (a, b) {
      return Number(a.getAttribute(key)) - Number(b.getAttribute(key));
    }).forEach(function (row) { list.appendChild(row); });
  }

  function openAll(value) {
    rows.forEach(function (row) { if (!row.hidden) { row.open = value; } });
  }

  [status, severity, kind].forEach(function (el) { el.addEventListener("change", apply); });
  text.addEventListener("input", apply);
  order.addEventListener("change", sort);
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  document.getElementById("expand").addEventListener("click", function () { openAll(true); });
  document.getElementById("collapse").addEventListener("click", function () { openAll(false); });

  var before = null;
  window.addEventListener("beforeprint", function () {
    before = rows.map(function (row) { return row.open; });
    rows.forEach(function (row) { row.open = true; });
  });
  window.addEventListener("afterprint", function () {
    if (before) { rows.forEach(function (row, i) { row.open = before[i]; }); }
    before = null;
  });
  // A link to a check (from the first screen) opens it, even when filters had hidden it.
  function openTarget() {
    var target = location.hash ? document.getElementById(location.hash.slice(1)) : null;
    if (target && rows.indexOf(target) !== -1) {
      target.hidden = false;
      target.open = true;
    }
  }
  window.addEventListener("hashchange", openTarget);
  apply();
  openTarget();
}());
