// Scanner: read a QR (a member card or voucher for staff, a poster for a resident) with
// the phone camera, then submit the form. Uses the browser's BarcodeDetector where there is one and the bundled jsQR
// (static/vendor) elsewhere; typing the code by hand always works.
(function () {
  "use strict";
  var video = document.getElementById("camera");
  var input = document.querySelector("[data-scan-target]");
  var start = document.getElementById("camera-start");
  if (!video || !input || !start) return;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
  var detector = "BarcodeDetector" in window
    ? new window.BarcodeDetector({ formats: ["qr_code"] }) : null;
  if (!detector && !window.jsQR) return;
  var canvas = document.createElement("canvas");
  var context = canvas.getContext("2d", { willReadFrequently: true });
  start.hidden = false;

  function decode() {
    if (detector) {
      return detector.detect(video).then(function (codes) {
        return codes.length ? codes[0].rawValue : null;
      });
    }
    var scale = Math.min(1, 640 / Math.max(video.videoWidth, video.videoHeight));
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    context.drawImage(video, 0, 0, canvas.width, canvas.height);
    var image = context.getImageData(0, 0, canvas.width, canvas.height);
    var found = window.jsQR(image.data, image.width, image.height,
      { inversionAttempts: "dontInvert" });
    return Promise.resolve(found ? found.data : null);
  }

  start.addEventListener("click", function () {
    start.hidden = true;
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } })
      .then(function (stream) {
        video.srcObject = stream;
        video.hidden = false;
        return video.play();
      })
      .then(function () {
        var busy = false;
        var timer = setInterval(function () {
          if (busy || video.readyState < 2) return;
          busy = true;
          decode().then(function (text) {
            busy = false;
            if (!text) return;
            clearInterval(timer);
            // A scanned URL ends with the code: /card/M12-1-ABCDEFGH, /v/ABCDEFGH
            input.value = text.split("/").pop();
            if (input.form.requestSubmit) input.form.requestSubmit(); else input.form.submit();
          }).catch(function () { busy = false; });
        }, 250);
      })
      .catch(function () { start.hidden = false; video.hidden = true; });
  });
})();
