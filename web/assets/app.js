// Fluxbase dashboard behaviour, bound by data- attributes (the CSP forbids
// inline script and hx-on): one delegated listener per kind, in this order.
"use strict";
(function () {
  // <form data-confirm="Really?">: ask before submitting.
  document.addEventListener("submit", function (ev) {
    var form = ev.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) {
      ev.preventDefault();
      ev.stopImmediatePropagation();
    }
  }, true);

  // <button data-copy="#id">: copy that element's text to the clipboard.
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    var src = document.querySelector(btn.getAttribute("data-copy"));
    if (src && navigator.clipboard) {
      navigator.clipboard.writeText(src.textContent.trim()).then(function () {
        btn.textContent = "Copied";
      });
    }
  });
  // A message in #flash (an htmx error) goes away when clicked.
  document.addEventListener("click", function (ev) {
    var flash = ev.target.closest("#flash");
    if (flash) flash.replaceChildren();
  });
})();

// Step-up re-authentication: a request the database refused with FBR01 is
// answered with the dialog (header X-Fluxbase-Reauth) swapped into #reauth.
// The refused form is kept; when the dialog's own request succeeds the
// server triggers "fbReauthed" and the form is submitted again.
(function () {
  var pending = null;

  function dialog() {
    return document.querySelector("#reauth dialog");
  }

  function closeDialog() {
    var d = dialog();
    if (d && d.open) d.close();
    var box = document.getElementById("reauth");
    if (box) box.replaceChildren();
  }

  document.addEventListener("htmx:afterRequest", function (ev) {
    var xhr = ev.detail.xhr;
    if (!xhr || xhr.getResponseHeader("X-Fluxbase-Reauth") !== "required") return;
    var elt = ev.detail.elt;
    if (elt && !elt.closest("#reauth")) pending = elt;
  });

  document.addEventListener("htmx:afterSwap", function (ev) {
    if (!ev.detail.target || ev.detail.target.id !== "reauth") return;
    var d = dialog();
    if (d && !d.open) d.showModal();
    var input = d && d.querySelector("input[name=secret]");
    if (input) input.focus();
  });

  document.addEventListener("fbReauthed", function () {
    closeDialog();
    var elt = pending;
    pending = null;
    if (elt && elt.isConnected) {
      if (elt.tagName === "FORM") elt.requestSubmit();
      else if (window.htmx) window.htmx.trigger(elt, "click");
    }
  });

  document.addEventListener("click", function (ev) {
    if (!ev.target.closest("[data-reauth-cancel]")) return;
    pending = null;
    closeDialog();
  });

  // <input data-confirm-value="text">: its form's submit button stays
  // disabled until exactly that text is typed (typed confirmation).
  document.addEventListener("input", function (ev) {
    var input = ev.target.closest && ev.target.closest("[data-confirm-value]");
    if (!input || !input.form) return;
    var btn = input.form.querySelector("button[type=submit]");
    if (btn) btn.disabled = input.value !== input.getAttribute("data-confirm-value");
  });
})();
