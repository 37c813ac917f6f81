// Meeting-room display: reload the month's board, groups and recent activity.
(function () {
  "use strict";
  var root = document.querySelector("[data-display-url]");
  if (!root) return;
  var url = root.getAttribute("data-display-url");
  var seconds = parseInt(root.getAttribute("data-refresh"), 10) || 30;
  function row(cells) {
    var li = document.createElement("li");
    li.className = "board-row";
    cells.forEach(function (c) {
      var span = document.createElement("span");
      span.className = c[0];
      span.textContent = c[1];  // text, never markup
      li.appendChild(span);
    });
    return li;
  }
  function fill(id, rows) {
    var list = document.getElementById(id);
    while (list.firstChild) list.removeChild(list.firstChild);
    rows.forEach(function (r) { list.appendChild(r); });
  }
  function refresh() {
    fetch(url, { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (data) {
      fill("display-board", data.items.map(function (i) {
        return row([["board-rank", i.rank], ["board-name", i.name], ["board-points", i.points]]);
      }));
      fill("display-groups", data.groups.map(function (g, n) {
        return row([["board-rank", n + 1], ["board-name", g.name], ["board-points", g.points]]);
      }));
      fill("display-recent", data.recent.map(function (a) {
        return row([["board-name", a.name + " · " + a.what], ["board-points", "+" + a.points]]);
      }));
      document.getElementById("display-updated").textContent = new Date().toLocaleTimeString();
      root.setAttribute("data-loaded", String((parseInt(root.getAttribute("data-loaded"), 10) || 0) + 1));
    }).catch(function () {});
  }
  refresh();
  setInterval(refresh, seconds * 1000);
})();
