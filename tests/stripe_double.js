// A stand-in for Stripe.js v3, served by the Stripe double: just the calls the card page makes,
// against the double that served it. Like Stripe's card element, its fields have no name, so a
// card number never travels with the page's own form.
(function () {
  "use strict";
  var base = new URL(document.currentScript.src).origin;

  function call(method, path, fields) {
    var params = new URLSearchParams(fields);
    var init = method === "POST" ? { method: "POST", body: params } : { method: "GET" };
    var url = base + path + (method === "GET" ? "?" + params : "");
    return fetch(url, init).then(function (r) { return r.json(); });
  }

  function field(box, label, placeholder) {
    var wrap = document.createElement("label");
    wrap.textContent = label;
    var input = document.createElement("input");
    input.type = "text";
    input.autocomplete = "off";
    input.placeholder = placeholder;
    wrap.appendChild(input);
    box.appendChild(wrap);
    return input;
  }

  function challenge(key, secret) {
    var id = secret.split("_secret_")[0];
    return new Promise(function (resolve) {
      var modal = document.createElement("div");
      modal.setAttribute("role", "dialog");
      modal.setAttribute("aria-label", "3D Secure test page");
      modal.style.cssText = "position:fixed;inset:0;background:#fff;padding:2rem;z-index:10";
      var text = document.createElement("p");
      text.textContent = "3D Secure test page: complete or fail the authentication.";
      modal.appendChild(text);
      ["complete", "fail"].forEach(function (result) {
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = result === "complete" ? "Complete authentication" : "Fail authentication";
        button.addEventListener("click", function () {
          modal.remove();
          var fields = { key: key, client_secret: secret, result: result };
          call("POST", "/v1/setup_intents/" + id + "/authenticate", fields).then(function (si) {
            if (si.status === "succeeded") { resolve({ setupIntent: si }); return; }
            resolve({ error: si.last_setup_error || si.error || { message: "failed" } });
          });
        });
        modal.appendChild(button);
      });
      document.body.appendChild(modal);
    });
  }

  window.Stripe = function (key) {
    var inputs = null;
    return {
      elements: function () {
        return {
          create: function () {
            return {
              mount: function (selector) {
                var box = document.querySelector(selector);
                inputs = {
                  number: field(box, "Card number", "1234 1234 1234 1234"),
                  expiry: field(box, "Expiry (MM/YY)", "MM / YY"),
                  cvc: field(box, "Security code", "CVC")
                };
              }
            };
          }
        };
      },
      createPaymentMethod: function () {
        var expiry = inputs.expiry.value.split("/");
        return call("POST", "/v1/payment_methods", {
          key: key,
          type: "card",
          "card[number]": inputs.number.value.replace(/\s+/g, ""),
          "card[exp_month]": (expiry[0] || "").trim(),
          "card[exp_year]": (expiry[1] || "").trim(),
          "card[cvc]": inputs.cvc.value
        }).then(function (body) {
          return body.error ? { error: body.error } : { paymentMethod: body };
        });
      },
      handleNextAction: function (options) { return challenge(key, options.clientSecret); },
      confirmCardSetup: function (secret) { return challenge(key, secret); }
    };
  };
})();
