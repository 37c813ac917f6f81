// Staff scanner: read a member card's QR with the camera where the browser can
// (BarcodeDetector), and always keep typing the code by hand as the fallback.
(function () {
  "use strict";
  var video = document.getElementById("camera");
  var input = document.getElementById("member_code");
  var form = document.getElementById("scan-form");
  if (!video || !input || !form) return;
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices) return;
  var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
  navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } })
    .then(function (stream) {
      video.srcObject = stream;
      video.hidden = false;
      return video.play();
    })
    .then(function () {
      var busy = false;
      setInterval(function () {
        if (busy || video.readyState < 2) return;
        busy = true;
        detector.detect(video).then(function (codes) {
          busy = false;
          if (codes.length) {
            input.value = codes[0].rawValue.split("/").pop();
            form.submit();
          }
        }).catch(function () { busy = false; });
      }, 300);
    })
    .catch(function () { video.hidden = true; });
})();
