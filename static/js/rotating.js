// The rotating check-in code: fetch the current code every few seconds and show it.
(function () {
  "use strict";
  var root = document.querySelector("[data-code-url]");
  if (!root) return;
  var url = root.getAttribute("data-code-url");
  var seconds = parseInt(root.getAttribute("data-seconds"), 10) || 30;
  var qr = document.getElementById("qr");
  var count = document.getElementById("count");
  var status = document.getElementById("status");
  var countdown = document.getElementById("countdown");
  var shown = null;
  var expires = 0;

  function refresh() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (data) {
        status.hidden = true;
        if (data.url !== shown) {
          qr.innerHTML = data.svg; // SVG markup made by the server from its own signed URL
          qr.setAttribute("data-url", data.url);
          shown = data.url;
        }
        count.textContent = data.checked_in;
        expires = Date.parse(data.expires_at);
      })
      .catch(function () { status.hidden = false; });
  }

  function tick() {
    var now = Date.now() / 1000;
    countdown.value = seconds - (Math.floor(now) % seconds);
  }
  refresh();
  setInterval(refresh, 5000);
  setInterval(tick, 1000);
})();
