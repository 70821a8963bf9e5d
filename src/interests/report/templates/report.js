(function () {
  "use strict";
  var all = function (sel) { return Array.prototype.slice.call(document.querySelectorAll(sel)); };
  window.addEventListener("beforeprint", function () {
    all("details").forEach(function (d) { d.open = true; });
  });
  all(".tools").forEach(function (t) { t.hidden = false; });
  all("[data-expand]").forEach(function (b) {
    b.addEventListener("click", function () {
      var open = b.getAttribute("data-expand") === "open";
      all("details").forEach(function (d) { d.open = open; });
    });
  });
  var box = document.getElementById("filters");
  if (!box) { return; }
  var text = document.getElementById("filter-text");
  var domain = document.getElementById("filter-domain");
  var count = document.getElementById("filter-count");
  var rows = all("tr[data-user]");
  function apply() {
    var q = text.value.trim().toLowerCase();
    var d = domain.value;
    var shown = 0;
    all("[data-user]").forEach(function (el) {
      var ok = (!q || el.getAttribute("data-search").indexOf(q) >= 0) &&
        (!d || el.getAttribute("data-domains").indexOf("|" + d + "|") >= 0);
      el.hidden = !ok;
      if (ok && el.tagName === "TR") { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length + " users";
  }
  text.addEventListener("input", apply);
  domain.addEventListener("change", apply);
  box.hidden = false;
  apply();
})();
