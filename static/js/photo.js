// The report's photo: the big button opens the camera (the input's `capture`), and the
// photo taken shows before it is sent. Without JavaScript the button still opens it.
(function () {
  "use strict";
  var input = document.getElementById("photo");
  var button = document.getElementById("photo-button");
  var preview = document.getElementById("photo-preview");
  if (!input || !button || !preview) return;
  input.addEventListener("change", function () {
    var file = input.files && input.files[0];
    if (!file) { preview.hidden = true; return; }
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    button.querySelector("span").textContent = button.getAttribute("data-again");
  });
})();
