// Replies arrive from the workers: refresh the sandbox timeline every few seconds.
(function () {
  "use strict";
  const box = document.getElementById("timeline");
  if (!box) return;
  window.setInterval(function () {
    fetch(box.dataset.url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { box.innerHTML = html; } })
      .catch(function () { /* try again on the next tick */ });
  }, 3000);
})();
