// Ticks the time left to confirm on the buyer's order page. The page already says it (this
// only keeps it current): without JavaScript the figure is right when the page was loaded.
(function () {
  "use strict";
  var clock = document.getElementById("time-left");
  if (!clock) return;
  var deadline = Date.now() + Number(clock.dataset.secondsLeft) * 1000;
  function tick() {
    var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    clock.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    clock.setAttribute("datetime", "PT" + left + "S");
    if (left > 0) window.setTimeout(tick, 1000);
  }
  tick();
})();
