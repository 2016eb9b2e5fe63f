// Follows a link code until the pipeline has seen the post: the identity page refreshes itself.
(function () {
  "use strict";
  const status = document.getElementById("link-status");
  if (!status) return;
  const url = status.dataset.statusUrl;
  const next = status.dataset.nextUrl;
  async function check() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const body = await response.json();
        status.textContent = body.message;
        status.className = body.state === "linked" ? "success" : body.state === "waiting" ? "" : "error";
        if (body.state === "linked") {
          window.setTimeout(function () { window.location.assign(next); }, 1500);
          return;
        }
        if (body.state !== "waiting") return;
      }
    } catch (error) {
      // The network blinked: try again on the next tick.
    }
    window.setTimeout(check, 2000);
  }
  window.setTimeout(check, 2000);
})();
