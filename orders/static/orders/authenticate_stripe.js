// The bank's check with Stripe.js: handleNextAction for an intent in requires_action, or
// confirmCardPayment with the saved card after an off-session authentication_required decline.
// Whatever the outcome, the form is then submitted: the server asks Stripe what happened.
(function () {
  "use strict";
  const box = document.getElementById("stripe-authenticate");
  if (!box || typeof Stripe === "undefined") return;
  const form = document.getElementById(box.dataset.form);
  const start = document.getElementById("authenticate-start");
  const progress = document.getElementById("authenticate-progress");
  const stripe = Stripe(box.dataset.publishableKey);
  start.addEventListener("click", async function () {
    start.disabled = true;
    progress.textContent = "Waiting for your bank…";
    const secret = box.dataset.clientSecret;
    const method = box.dataset.paymentMethod;
    try {
      if (method) {
        await stripe.confirmCardPayment(secret, { payment_method: method });
      } else {
        await stripe.handleNextAction({ clientSecret: secret });
      }
    } finally {
      progress.textContent = "Checking the result…";
      form.submit();
    }
  });
})();
