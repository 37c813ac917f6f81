// The no-signal page: "Try again" loads the same address again (a GET, so a check-in
// form that failed shows its button again instead of being sent blindly twice). When the
// phone says it is back online it tries by itself, a moment later (the first request
// after the signal returns often fails), and again every 15 s while it still seems online.
(function () {
  "use strict";
  function again() { location.replace(location.href); }
  var button = document.getElementById("retry");
  if (button) button.addEventListener("click", again);
  window.addEventListener("online", function () { setTimeout(again, 1500); });
  setInterval(function () { if (navigator.onLine) again(); }, 15000);
})();
