// The fleet page's only script: filter the matrix rows by hostname and by failures.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var table = document.getElementById("matrix");
  if (!form || !table) { return; }
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var host = document.getElementById("f-host");
  var failing = document.getElementById("f-failing");
  var shown = document.getElementById("shown");
  form.hidden = false;

  function apply() {
    var query = host.value.trim().toLowerCase();
    var visible = 0;
    rows.forEach(function (row) {
      var ok = (!query || row.getAttribute("data-host").toLowerCase().indexOf(query) !== -1) &&
        (!failing.checked || row.getAttribute("data-failing") !== "0");
      row.hidden = !ok;
      if (ok) { visible += 1; }
    });
    shown.textContent = visible + " of " + rows.length + " hosts shown";
  }

  host.addEventListener("input", apply);
  failing.addEventListener("change", apply);
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  apply();
}());
