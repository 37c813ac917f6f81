// Every page registers the service worker (static/js/sw.js, served as /sw.js): it keeps the
// staff's offline scanner working without signal and shows a retry page, not the browser's
// error, when a resident's check-in cannot reach the server.
(function () {
  "use strict";
  if ("serviceWorker" in navigator && window.isSecureContext) {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function () {});
  }
})();
