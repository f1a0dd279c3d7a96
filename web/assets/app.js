// Fluxbase dashboard behaviour, bound by data- attributes (the CSP forbids
// inline script and hx-on): one delegated listener per kind, in this order.
"use strict";
(function () {
  // <form data-confirm="Really?">: ask before submitting.
  document.addEventListener("submit", function (ev) {
    var form = ev.target.closest("form[data-confirm]");
    // Sent again after a step-up re-authentication: it was confirmed already.
    if (form && form.hasAttribute("data-resent")) {
      form.removeAttribute("data-resent");
      return;
    }
    if (form && !window.confirm(form.getAttribute("data-confirm"))) {
      ev.preventDefault();
      ev.stopImmediatePropagation();
    }
  }, true);

  // <input data-from-hash="token">: filled from the address's "#token=..."
  // (an invitation link keeps its token in the fragment, which no server
  // sees); the fragment is then removed from the address and the history.
  var fromHash = document.querySelector("input[data-from-hash]");
  if (fromHash && location.hash.indexOf("#" + fromHash.getAttribute("data-from-hash") + "=") === 0) {
    fromHash.value = decodeURIComponent(location.hash.slice(fromHash.getAttribute("data-from-hash").length + 2));
    history.replaceState(null, "", location.pathname + location.search);
  }

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
      if (elt.tagName === "FORM") {
        elt.setAttribute("data-resent", "");
        elt.requestSubmit();
      }
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

  // Tables: the grid's "select all on this page" box.
  document.addEventListener("change", function (ev) {
    var all = ev.target.closest("[data-select-all]");
    if (!all) return;
    var form = all.closest("form");
    form.querySelectorAll("input[name=pk]").forEach(function (b) { b.checked = all.checked; });
  });

  // Tables, View as… and Stop: come back to this page (path and query; the
  // server takes only a path of the dashboard, see back_to in tables.rs).
  document.addEventListener("submit", function (ev) {
    var here = ev.target.querySelector("input[data-here]");
    if (here) here.value = window.location.pathname + window.location.search;
  }, true);

  // Tables: a JSON editor says at once when its text is not JSON (the
  // server and the database check again).
  document.addEventListener("input", function (ev) {
    var t = ev.target.closest("[data-json-check]");
    if (!t) return;
    try { if (t.value.trim() !== "") JSON.parse(t.value); t.setCustomValidity(""); }
    catch (e) { t.setCustomValidity("not valid JSON: " + e.message); }
    t.reportValidity();
  });

  // Tables, live: the toggle watches the table (POST) and opens an
  // EventSource; each change re-fetches the visible page through the normal
  // handler (grants and RLS apply) and marks new or changed rows a while.
  var source = null;
  function snapshot(grid) {
    var m = {};
    grid.querySelectorAll("tr[data-key]").forEach(function (tr) { m[tr.getAttribute("data-key")] = tr.textContent; });
    return m;
  }
  var pending = null;
  function refresh() {
    var grid = document.getElementById("grid");
    if (!grid || pending) return;
    var before = snapshot(grid);
    pending = fetch(grid.getAttribute("data-src"), { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        pending = null;
        if (html === null) return;
        var old = document.getElementById("grid");
        var box = document.createElement("div");
        box.innerHTML = html;
        var fresh = box.querySelector("#grid");
        if (!old || !fresh) return;
        old.replaceWith(fresh);
        if (window.htmx) window.htmx.process(fresh);
        fresh.querySelectorAll("tr[data-key]").forEach(function (tr) {
          var k = tr.getAttribute("data-key");
          if (before[k] !== tr.textContent) {
            tr.classList.add("changed");
            setTimeout(function () { tr.classList.remove("changed"); }, 3000);
          }
        });
        document.body.setAttribute("data-live-refreshed", String(Date.now()));
      })
      .catch(function () { pending = null; });
  }
  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"]; } catch (e) { return ""; }
  }
  // A refused toggle unticks itself and says why (the server's text, put in
  // as text) in the [data-live-refused] element beside it.
  function liveRefused(toggle, text) {
    toggle.checked = false;
    document.body.removeAttribute("data-live");
    var box = toggle.closest(".live-toggle");
    var out = box && box.parentNode ? box.parentNode.querySelector("[data-live-refused]") : null;
    if (out) { out.textContent = text; out.hidden = false; }
  }
  function live(on, url, toggle) {
    if (source) { source.close(); source = null; }
    var grid = document.getElementById("grid");
    fetch(url, { method: "POST", credentials: "same-origin",
                 headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": csrfToken() },
                 body: "on=" + (on ? "1" : "0") })
      .then(function (r) {
        if (!r.ok) {
          if (on && toggle) {
            var ct = r.headers.get("Content-Type") || "";
            r.text().then(function (t) {
              liveRefused(toggle, ct.indexOf("text/plain") === 0 ? t : "Live updates are off: refused (" + r.status + ").");
            });
          }
          return;
        }
        if (toggle) {
          var box = toggle.closest(".live-toggle");
          var out = box && box.parentNode ? box.parentNode.querySelector("[data-live-refused]") : null;
          if (out) { out.textContent = ""; out.hidden = true; }
        }
        if (!on || !grid) return;
        source = new EventSource(grid.getAttribute("data-events"));
        source.addEventListener("change", refresh);
        source.addEventListener("resync", refresh);
        source.addEventListener("open", function () { document.body.setAttribute("data-live", "on"); });
      });
  }
  document.addEventListener("change", function (ev) {
    var t = ev.target.closest("[data-live-toggle]");
    if (t) live(t.checked, t.getAttribute("data-live-toggle"), t);
  });

  // The banner's time left counts down; at zero the page reloads (the
  // impersonation has ended: the server drops it).
  var banner = document.querySelector(".imp-banner[data-seconds-left]");
  if (banner) {
    var left = parseInt(banner.getAttribute("data-seconds-left"), 10);
    var shown = banner.querySelector(".imp-left");
    setInterval(function () {
      left -= 1;
      if (left <= 0) { window.location.reload(); return; }
      var m = Math.floor(left / 60), s = left % 60;
      shown.textContent = (m >= 60 ? Math.floor(m / 60) + "h " + (m % 60) + "m" : m + "m " + (s < 10 ? "0" : "") + s + "s");
    }, 1000);
  }
})();
