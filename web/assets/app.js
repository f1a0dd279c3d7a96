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
