// The sandbox's stand-in for Stripe.js (handleNextAction): the bank's check is two buttons. The
// answer goes to the sandbox "bank" (its ledger), then the form is submitted, and the server
// reads the outcome from the sandbox gateway, as it would from Stripe.
(function () {
  "use strict";
  const box = document.getElementById("sandbox-bank");
  if (!box) return;
  const form = document.getElementById(box.dataset.form);
  const progress = document.getElementById("authenticate-progress");
  const buttons = box.querySelectorAll("button[data-outcome]");
  buttons.forEach(function (button) {
    button.addEventListener("click", async function () {
      buttons.forEach(function (b) { b.disabled = true; });
      progress.textContent = "Asking the sandbox bank…";
      const body = new FormData();
      body.append("secret", box.dataset.secret);
      body.append("outcome", button.dataset.outcome);
      try {
        await fetch(box.dataset.bankUrl, {
          method: "POST",
          body: body,
          credentials: "same-origin",
          headers: { "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value },
        });
      } finally {
        progress.textContent = "Checking the result…";
        form.submit();
      }
    });
  });
})();
