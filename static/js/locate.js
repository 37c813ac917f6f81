// Attach the phone's location to a form when the browser can give it: on the report form
// after a tap on "Add my location", on a checkpoint plate page at once (no tap needed).
(function () {
  "use strict";
  var lat = document.getElementById("latitude");
  var lng = document.getElementById("longitude");
  if (!lat || !lng || !navigator.geolocation) return;
  var button = document.getElementById("locate");
  var status = document.getElementById("locate-status");
  function locate() {
    if (status) status.textContent = "…";
    navigator.geolocation.getCurrentPosition(function (pos) {
      lat.value = pos.coords.latitude.toFixed(6);
      lng.value = pos.coords.longitude.toFixed(6);
      if (status) status.textContent = "✓";
    }, function () { if (status) status.textContent = "✗"; }, { timeout: 10000 });
  }
  if (button) {
    button.hidden = false;
    button.addEventListener("click", locate);
  } else {
    locate();
  }
})();
