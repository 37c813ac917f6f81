// Residents list: the header checkbox ticks or clears every row of the page.
(function () {
  var all = document.getElementById("tick-all");
  if (!all) return;
  all.addEventListener("change", function () {
    document.querySelectorAll("#residents tbody input[type=checkbox]").forEach(function (box) {
      box.checked = all.checked;
    });
  });
})();
