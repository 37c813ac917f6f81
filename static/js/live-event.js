// The staff event page keeps its check-ins and refusals current without reloading itself:
// every 15 seconds, while the page is visible, it fetches itself and swaps the two tables
// (a whole-page refresh moved focus and interrupted screen readers).
(function () {
  "use strict";
  var ids = ["checkin-count", "checkin-rows", "refusal-rows"];
  function refresh() {
    if (document.hidden) return;
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        ids.forEach(function (id) {
          var now = document.getElementById(id), next = fresh.getElementById(id);
          if (now && next && now.innerHTML !== next.innerHTML) now.innerHTML = next.innerHTML;
        });
      })
      .catch(function () { /* no signal: the next round tries again */ });
  }
  setInterval(refresh, 15000);
})();
