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
  var topic = document.getElementById("filter-topic");
  var count = document.getElementById("filter-count");
  var rows = all("tr[data-user]");
  function apply() {
    var q = text.value.trim().toLowerCase();
    var d = domain.value;
    var t = topic.value;
    var shown = 0;
    var hide = {};
    rows.forEach(function (el) {
      var ok = (!q || el.getAttribute("data-search").indexOf(q) >= 0) &&
        (!d || el.getAttribute("data-domains").indexOf("|" + d + "|") >= 0) &&
        (!t || el.getAttribute("data-topics").indexOf("|" + t + "|") >= 0);
      el.hidden = !ok;
      hide[el.getAttribute("data-user")] = !ok;
      if (ok) { shown += 1; }
    });
    all("section[data-user]").forEach(function (el) { el.hidden = hide[el.getAttribute("data-user")] === true; });
    count.textContent = shown + " of " + rows.length + " users";
  }
  text.addEventListener("input", apply);
  domain.addEventListener("change", apply);
  topic.addEventListener("change", apply);
  box.hidden = false;
  apply();
})();
