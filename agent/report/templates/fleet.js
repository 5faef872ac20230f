// The fleet page's only script: filter hosts (matrix rows and host sections) by name and by
// failures, and checks (matrix columns, the checks table, host sections' rows) by severity and
// kind. Columns are hidden through their <col> in each of the matrix's tables (visibility:
// collapse): one class per check and table, not one change per cell of a thousand-host matrix.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var matrix = document.getElementById("matrix");
  if (!form || !matrix) { return; }
  var rows = Array.prototype.slice.call(matrix.querySelectorAll("tbody tr"));
  var heads = Array.prototype.slice.call(matrix.querySelectorAll("th[data-severity]"));
  var colgroups = Array.prototype.slice.call(matrix.querySelectorAll("colgroup")).map(
    function (group) { return group.querySelectorAll("col.k"); });
  var tables = Array.prototype.slice.call(matrix.querySelectorAll("table"));
  var fixed = parseInt(matrix.getAttribute("data-fixed"), 10);
  var column = parseInt(matrix.getAttribute("data-column"), 10);
  var sections = Array.prototype.slice.call(document.querySelectorAll("section.host-detail"));
  var checkRows = Array.prototype.slice.call(
    document.querySelectorAll("#checks tbody tr, section.host-detail tbody tr"));
  var host = document.getElementById("f-host");
  var severity = document.getElementById("f-severity");
  var kind = document.getElementById("f-kind");
  var failing = document.getElementById("f-failing");
  var shown = document.getElementById("shown");
  form.hidden = false;

  function hostShown(el, query) {
    return (!query || el.getAttribute("data-host").toLowerCase().indexOf(query) !== -1) &&
      (!failing.checked || el.getAttribute("data-failing") !== "0");
  }

  function checkShown(el) {
    return (!severity.value || el.getAttribute("data-severity") === severity.value) &&
      (!kind.value || el.getAttribute("data-kind") === kind.value);
  }

  function apply() {
    var query = host.value.trim().toLowerCase();
    var hosts = 0;
    var checks = 0;
    rows.forEach(function (row) {
      var ok = hostShown(row, query);
      if (row.hidden === ok) { row.hidden = !ok; }
      if (ok) { hosts += 1; }
    });
    sections.forEach(function (section) {
      var ok = hostShown(section, query);
      if (section.hidden === ok) { section.hidden = !ok; }
    });
    heads.forEach(function (head, j) {
      var ok = checkShown(head);
      colgroups.forEach(function (cols) { cols[j].classList.toggle("off", !ok); });
      if (ok) { checks += 1; }
    });
    tables.forEach(function (t) { t.setAttribute("width", String(fixed + column * checks)); });
    checkRows.forEach(function (row) {
      var ok = checkShown(row);
      if (row.hidden === ok) { row.hidden = !ok; }
    });
    shown.textContent = hosts + " of " + rows.length + " hosts, " + checks + " of " +
      heads.length + " checks shown";
  }

  host.addEventListener("input", apply);
  severity.addEventListener("change", apply);
  kind.addEventListener("change", apply);
  failing.addEventListener("change", apply);
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  apply();
}());
