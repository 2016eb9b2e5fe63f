// Stripe's Payment Element: the card number goes from Stripe's iframe to Stripe, never here.
(function () {
  "use strict";
  const form = document.getElementById("card-form");
  if (!form || typeof Stripe === "undefined") return;
  const stripe = Stripe(form.dataset.publishableKey);
  const elements = stripe.elements({ clientSecret: form.dataset.clientSecret });
  elements.create("payment").mount("#payment-element");
  const error = document.getElementById("card-error");
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const result = await stripe.confirmSetup({
      elements: elements,
      confirmParams: { return_url: form.dataset.returnUrl },
    });
    if (result.error) {
      error.textContent = result.error.message;
      error.hidden = false;
    }
  });
})();
