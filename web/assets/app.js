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
        var focusAt = window.fbGridFocus ? window.fbGridFocus.save() : null;
        old.replaceWith(fresh);
        if (window.htmx) window.htmx.process(fresh);
        if (window.fbGridFocus) window.fbGridFocus.restore(fresh, focusAt);
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

// Accessibility (issue 34): announcements, focus after htmx swaps, the
// keyboard data grid (WAI-ARIA grid pattern), focusable scrolling tables.
(function () {
  // One polite live region, #flash (role=status): a short text for screen
  // readers only (an error swapped in later replaces it, as before).
  function announce(text) {
    var flash = document.getElementById("flash");
    if (!flash || !text) return;
    var span = document.createElement("span");
    span.className = "sr-only";
    span.textContent = text;
    flash.replaceChildren(span);
  }
  window.fbAnnounce = announce;

  // ---- the grid ----
  // table[data-kbd-grid]: one tab stop (roving tabindex on the cells); the
  // controls inside cells (row checkboxes, sort links, long-text toggles)
  // are reached through their cell, not by Tab.
  var PAGE_ROWS = 10;
  function gridOf(el) { return el && el.closest ? el.closest("table[data-kbd-grid]") : null; }
  function cellOf(el) {
    var c = el && el.closest ? el.closest("td, th") : null;
    return c && gridOf(c) ? c : null;
  }
  function rowsOf(t) { return Array.prototype.filter.call(t.rows, function (r) { return r.cells.length > 0; }); }
  function editing(cell) { return !!(cell && cell.querySelector("form.editor")); }
  function tame(cell) {
    if (editing(cell)) return;
    cell.querySelectorAll("a, button, input, select, textarea, summary").forEach(function (c) {
      c.setAttribute("tabindex", "-1");
    });
  }
  function setupGrid(t) {
    var current = t.querySelector("td[tabindex='0'], th[tabindex='0']");
    rowsOf(t).forEach(function (r) {
      Array.prototype.forEach.call(r.cells, function (c) {
        if (c !== current) c.setAttribute("tabindex", "-1");
        tame(c);
      });
    });
    if (!current) {
      var body = t.tBodies[0];
      current = (body && body.rows[0] && body.rows[0].cells[body.rows[0].cells.length > 1 ? 1 : 0]) || t.rows[0].cells[0];
      if (current) current.setAttribute("tabindex", "0");
    }
  }
  function moveTo(cell) {
    if (!cell) return;
    var t = gridOf(cell);
    t.querySelectorAll("td[tabindex='0'], th[tabindex='0']").forEach(function (c) {
      if (c !== cell) c.setAttribute("tabindex", "-1");
    });
    cell.setAttribute("tabindex", "0");
    cell.focus();
  }
  function position(cell) {
    var rows = rowsOf(gridOf(cell));
    var r = rows.indexOf(cell.parentElement);
    return { rows: rows, r: r, c: Array.prototype.indexOf.call(cell.parentElement.cells, cell) };
  }
  function at(rows, r, c) {
    r = Math.max(0, Math.min(rows.length - 1, r));
    var cells = rows[r].cells;
    return cells[Math.max(0, Math.min(cells.length - 1, c))];
  }
  function columnName(cell) {
    var t = gridOf(cell);
    var head = t.tHead && t.tHead.rows[0] && t.tHead.rows[0].cells[cell.cellIndex];
    var a = head && head.querySelector("a.sort");
    return a ? a.textContent.trim() : "";
  }
  function startEdit(cell) {
    if (cell.hasAttribute("data-editable") && window.htmx) {
      cell.setAttribute("data-return-focus", "");
      window.htmx.trigger(cell, "fbedit");
      return true;
    }
    return false;
  }
  function activate(cell) {
    // A cell without an editor: its own control (sort link, long text, link).
    var c = cell.querySelector("a.sort, summary, a, input[type=checkbox], button[data-why]");
    if (c) c.click();
  }
  function toggleRow(cell) {
    var box = cell.parentElement.querySelector("input[name=pk], input[data-select-all]");
    if (box) box.click();
  }

  document.addEventListener("keydown", function (ev) {
    var t = gridOf(ev.target);
    if (!t) return;
    var form = ev.target.closest("form.editor");
    if (form) {
      var cellE = form.closest("td");
      // A key pressed right after the editor was swapped in (e.g. with the
      // database's refusal) may come before htmx has wired the new form's
      // controls: wire them first (a no-op when done), so Escape's click and
      // Enter's submit always go through htmx.
      if ((ev.key === "Escape" || ev.key === "Enter") && window.htmx) window.htmx.process(form);
      if (ev.key === "Escape") {
        ev.preventDefault();
        cellE.setAttribute("data-return-focus", "");
        var cancel = form.querySelector("button[hx-get]");
        if (cancel) cancel.click();
      } else if (ev.key === "Enter" && !ev.shiftKey && !ev.altKey && ev.target.tagName !== "BUTTON") {
        // Enter saves (Shift+Enter is a new line in a text field).
        ev.preventDefault();
        cellE.setAttribute("data-return-focus", "");
        form.requestSubmit();
      }
      return;
    }
    var cell = cellOf(ev.target);
    if (!cell || ev.target !== cell) return;
    var p = position(cell);
    var next = null;
    switch (ev.key) {
      case "ArrowRight": next = at(p.rows, p.r, p.c + 1); break;
      case "ArrowLeft": next = at(p.rows, p.r, p.c - 1); break;
      case "ArrowDown": next = at(p.rows, p.r + 1, p.c); break;
      case "ArrowUp": next = at(p.rows, p.r - 1, p.c); break;
      case "Home": next = ev.ctrlKey ? at(p.rows, 0, 0) : at(p.rows, p.r, 0); break;
      case "End": next = ev.ctrlKey ? at(p.rows, p.rows.length - 1, 1e6) : at(p.rows, p.r, 1e6); break;
      case "PageDown": next = at(p.rows, p.r + PAGE_ROWS, p.c); break;
      case "PageUp": next = at(p.rows, p.r - PAGE_ROWS, p.c); break;
      case "Enter": case "F2":
        ev.preventDefault();
        if (!startEdit(cell) && ev.key === "Enter") activate(cell);
        return;
      case " ":
        ev.preventDefault();
        toggleRow(cell);
        return;
      default: return;
    }
    ev.preventDefault();
    moveTo(next);
  });

  // A click or focus inside a cell makes it the grid's tab stop.
  document.addEventListener("focusin", function (ev) {
    var cell = cellOf(ev.target);
    if (!cell || cell.getAttribute("tabindex") === "0") return;
    gridOf(cell).querySelectorAll("td[tabindex='0'], th[tabindex='0']").forEach(function (c) { c.setAttribute("tabindex", "-1"); });
    cell.setAttribute("tabindex", "0");
  });

  // After a swap into a grid cell: the editor's field takes focus; back
  // from the editor (saved or cancelled) the cell does, announced.
  document.addEventListener("htmx:afterSwap", function (ev) {
    var cell = ev.detail.target;
    if (!cell || !cell.matches || !cell.matches("td") || !gridOf(cell)) return;
    var col = columnName(cell);
    if (editing(cell)) {
      var field = cell.querySelector("form.editor textarea, form.editor select, form.editor input:not([type=hidden]):not([type=checkbox])");
      var err = cell.querySelector(".cell-error");
      if (field) field.focus();
      announce(err ? "Not saved: " + err.textContent : "Editing " + col + ". Enter saves, Escape cancels.");
      return;
    }
    tame(cell);
    var verb = ev.detail.requestConfig && ev.detail.requestConfig.verb;
    if (cell.hasAttribute("data-return-focus") || cell.contains(document.activeElement) || document.activeElement === document.body) {
      cell.removeAttribute("data-return-focus");
      moveTo(cell);
    }
    announce(verb === "post" ? "Saved " + col + "." : "Edit of " + col + " cancelled.");
  });

  // The live grid refresh (above) replaces #grid: keep the focused cell.
  window.fbGridFocus = {
    save: function () {
      var cell = cellOf(document.activeElement);
      if (!cell) return null;
      var p = position(cell);
      return { r: p.r, c: p.c };
    },
    restore: function (root, pos) {
      root.querySelectorAll("table[data-kbd-grid]").forEach(setupGrid);
      var t = root.querySelector("table[data-kbd-grid]");
      if (t && pos) moveTo(at(rowsOf(t), pos.r, pos.c));
    }
  };

  // ---- scrolling tables ----
  // A table wrapper that scrolls sideways (phone width) must take focus so
  // the keyboard can scroll it; it is named after the heading above it.
  function label(wrap) {
    var t = wrap.querySelector("table");
    if (t && t.getAttribute("aria-label")) return t.getAttribute("aria-label");
    for (var e = wrap.previousElementSibling; e; e = e.previousElementSibling) {
      if (/^H[1-3]$/.test(e.tagName)) return e.textContent.trim();
      var h = e.querySelector && e.querySelector("h1, h2, h3");
      if (h) return h.textContent.trim();
    }
    var sec = wrap.closest("section");
    var h2 = sec && sec.querySelector("h1, h2");
    return h2 ? h2.textContent.trim() : "table";
  }
  function scrollers(root) {
    (root || document).querySelectorAll(".table-wrap").forEach(function (w) {
      if (w.querySelector("table[data-kbd-grid]")) return;
      if (w.scrollWidth > w.clientWidth + 1) {
        if (!w.hasAttribute("tabindex")) {
          w.setAttribute("tabindex", "0");
          w.setAttribute("role", "region");
          w.setAttribute("aria-label", label(w) + " (scrolls sideways)");
        }
      } else if (w.getAttribute("tabindex") === "0") {
        w.removeAttribute("tabindex");
        w.removeAttribute("role");
        w.removeAttribute("aria-label");
      }
    });
  }
  var resizeObs = window.ResizeObserver ? new ResizeObserver(function () { scrollers(); }) : null;
  function prepare(root) {
    (root.matches && root.matches("table[data-kbd-grid]") ? [root] : root.querySelectorAll("table[data-kbd-grid]")).forEach(setupGrid);
    scrollers(root.closest ? (root.closest(".table-wrap") ? root.closest(".table-wrap").parentElement : root) : document);
    if (resizeObs) document.querySelectorAll(".table-wrap").forEach(function (w) { resizeObs.observe(w); });
  }
  prepare(document);
  window.addEventListener("resize", function () { scrollers(); });

  // ---- focus after htmx swaps ----
  // New content in #main: its heading takes focus and is announced. (The
  // Analytics page refreshes itself every 5 s into #analytics: not moved.)
  document.addEventListener("htmx:afterSettle", function (ev) {
    var t = ev.detail.target || ev.target;
    if (!t || !t.querySelectorAll) return;
    prepare(t);
    if (t.id !== "main") return;
    if (t.contains(document.activeElement) && document.activeElement.matches("input:not([type=hidden]), textarea, select")) return;
    var h = t.querySelector("h1") || t.querySelector("h2");
    if (!h) return;
    h.setAttribute("tabindex", "-1");
    h.focus({ preventScroll: false });
    var msg = t.querySelector(".notice, .shown, .error:not(:empty)");
    announce(h.textContent.trim() + (msg ? ". " + msg.textContent.trim().replace(/\s+/g, " ") : ""));
  });

  // ---- Why? (issue 32) ----
  // A verdict swapped into a table page's #row-why: its heading takes focus
  // (and is read out), wherever the Why? or the key form was.
  document.addEventListener("htmx:afterSettle", function (ev) {
    var t = ev.detail.target || ev.target;
    if (!t || t.id !== "row-why") return;
    var h = t.querySelector("h2");
    if (!h) return;
    h.setAttribute("tabindex", "-1");
    h.focus();
  });

  // ---- dialogs ----
  // The step-up dialog is modal (showModal: the rest of the page is inert,
  // so focus stays in it); when it closes, focus goes back to where it was.
  var returnTo = null;
  document.addEventListener("htmx:beforeSwap", function (ev) {
    if (ev.detail.target && ev.detail.target.id === "reauth" && !document.querySelector("#reauth dialog[open]")) {
      returnTo = document.activeElement;
    }
  });
  document.addEventListener("close", function (ev) {
    if (!ev.target.matches || !ev.target.matches("#reauth dialog")) return;
    var box = document.getElementById("reauth");
    if (box) box.replaceChildren();
    var back = returnTo;
    returnTo = null;
    if (back && back.isConnected && back !== document.body) back.focus();
  }, true);
})();

// Passkeys (issue 33): WebAuthn ceremonies. The database makes the options
// (JSON, binary fields base64url, as webauthn-rs writes them) and verifies the
// answer; this script only converts base64url <-> ArrayBuffer and carries
// them: POST …/begin -> navigator.credentials.create/get -> POST …/finish.
// Refusals come back as plain text and are shown as text.
//   form[data-passkey-register=finishUrl]   My account: "Add a passkey"
//   [data-passkey-login=beginUrl]           sign-in: "Sign in with a passkey"
//                                           (+ conditional UI on the email field)
//   [data-passkey-mfa=beginUrl]             the second step: "Use your passkey"
//   [data-passkey-reauth=beginUrl]          the step-up dialog
//   [data-passkey-only]                     shown only where WebAuthn exists;
//     with data-passkey-probe=beginUrl only once that begin succeeded (the
//     admin has a passkey); its options are kept for the first click.
(function () {
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  function fromB64u(s) {
    s = String(s).replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function toB64u(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = fromB64u(pk.challenge);
    pk.user.id = fromB64u(pk.user.id);
    // A passkey is a discoverable credential: signing in with it alone
    // (auth.passwordless) finds it without a user name. webauthn-rs' options
    // discourage resident keys; platform authenticators make them anyway,
    // security keys and test authenticators only when asked. (The database
    // verifies the same answer either way.)
    pk.authenticatorSelection = pk.authenticatorSelection || {};
    pk.authenticatorSelection.residentKey = "required";
    pk.authenticatorSelection.requireResidentKey = true;
    (pk.excludeCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
    return pk;
  }
  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = fromB64u(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
    return pk;
  }
  function credentialJson(cred) {
    var r = cred.response;
    var resp = { clientDataJSON: toB64u(r.clientDataJSON) };
    if (r.attestationObject) {
      resp.attestationObject = toB64u(r.attestationObject);
      if (r.getTransports) resp.transports = r.getTransports();
    } else {
      resp.authenticatorData = toB64u(r.authenticatorData);
      resp.signature = toB64u(r.signature);
      if (r.userHandle) resp.userHandle = toB64u(r.userHandle);
    }
    return JSON.stringify({
      id: cred.id, rawId: toB64u(cred.rawId), type: cred.type, response: resp,
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    });
  }

  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"] || ""; } catch (e) { return ""; }
  }
  // POST fields; resolves to {options} (200 JSON), {ok} (204) or {error: text}.
  function post(url, fields) {
    var body = new URLSearchParams(fields || {});
    var token = csrf();
    if (token) body.set("_csrf", token);
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": token },
      body: body.toString()
    }).then(function (r) {
      if (r.status === 204) return { ok: true };
      var ct = r.headers.get("Content-Type") || "";
      if (r.ok && ct.indexOf("application/json") === 0) return r.json().then(function (o) { return { options: o }; });
      return r.text().then(function (t) {
        return { error: ct.indexOf("text/plain") === 0 && t ? t : "Refused by the server (" + r.status + ")." };
      });
    }, function () { return { error: "The dashboard could not be reached. Try again." }; });
  }
  function said(e) {
    if (!e) return "The passkey prompt failed.";
    if (e.name === "NotAllowedError") return "The passkey prompt was closed, timed out or was not allowed. Try again.";
    if (e.name === "InvalidStateError") return "This device already holds a passkey for your account.";
    if (e.name === "SecurityError") return "This browser refused the passkey for this address: the dashboard's passkey settings (webauthn.rp_id, webauthn.origins) do not match the URL you opened.";
    return "The passkey prompt failed: " + (e.message || e.name);
  }
  function status(near, text, ok) {
    var box = near && near.closest("[data-passkey-only], section, dialog");
    var out = box ? box.querySelector("[data-passkey-status]") : null;
    if (!out) return;
    out.textContent = text;
    out.hidden = !text;
    out.classList.toggle("error", !ok);
    out.classList.toggle("notice", !!ok);
  }
  // A refusal ends the chain: shown, then an Error nobody needs to see again.
  function Stop() {}
  function check(near, a) {
    if (a.error) { status(near, a.error, false); throw new Stop(); }
    return a;
  }
  function failed(near) {
    return function (e) {
      if (e instanceof Stop) return;
      if (e && e.name === "AbortError") return;
      status(near, said(e), false);
    };
  }

  // ---- options kept from a probe (used once, while fresh) ----
  var kept = new WeakMap();
  function optionsFor(el, beginUrl) {
    var box = el.closest("[data-passkey-probe]");
    var k = box && kept.get(box);
    if (k && Date.now() - k.at < 60000) {
      kept.delete(box);
      return Promise.resolve({ options: k.options });
    }
    return post(beginUrl);
  }
  function probe(root) {
    (root || document).querySelectorAll("[data-passkey-only]").forEach(function (box) {
      var url = box.getAttribute("data-passkey-probe");
      if (!url) { box.hidden = false; return; }
      if (box.hasAttribute("data-probed")) return;
      box.setAttribute("data-probed", "");
      post(url).then(function (a) {
        if (!a.options) return;
        kept.set(box, { options: a.options, at: Date.now() });
        box.hidden = false;
      });
    });
  }
  probe(document);
  document.addEventListener("htmx:afterSwap", function (ev) { if (ev.detail.target) probe(ev.detail.target); });

  // ---- My account: add a passkey ----
  document.addEventListener("submit", function (ev) {
    var form = ev.target.closest("form[data-passkey-register]");
    if (!form) return;
    ev.preventDefault();
    var btn = form.querySelector("button[type=submit]");
    btn.disabled = true;
    status(form, "", true);
    post(form.getAttribute("action"), { name: form.querySelector("input[name=name]").value })
      .then(function (a) { return navigator.credentials.create({ publicKey: creationOptions(check(form, a).options) }); })
      .then(function (cred) { return post(form.getAttribute("data-passkey-register"), { credential: credentialJson(cred) }); })
      .then(function (a) {
        check(form, a);
        var done = function () {
          var out = document.querySelector("#passkeys [data-passkey-status]");
          if (out) { out.textContent = "Passkey added."; out.hidden = false; out.classList.add("notice"); }
          if (window.fbAnnounce) window.fbAnnounce("Passkey added.");
        };
        if (window.htmx) window.htmx.ajax("GET", "/admin/account", { target: "#main" }).then(done);
        else window.location.reload();
      })
      .catch(failed(form))
      .then(function () { if (btn.isConnected) btn.disabled = false; });
  });

  // ---- sign-in with a passkey alone ----
  // The autofill request (mediation "conditional") waits while the page is
  // open; a click aborts it, and the modal request starts once it has ended
  // (the browser refuses a second request while one is pending).
  var conditional = null, conditionalEnded = Promise.resolve();
  function signIn(el, beginUrl, finishUrl, mediation) {
    var ctl = new AbortController();
    if (mediation) conditional = ctl;
    return optionsFor(el, beginUrl)
      .then(function (a) {
        var opts = { publicKey: requestOptions(check(el, a).options), signal: ctl.signal };
        if (mediation) opts.mediation = mediation;
        return navigator.credentials.get(opts);
      })
      .then(function (cred) { return post(finishUrl, { credential: credentialJson(cred) }); })
      .then(function (a) {
        check(el, a);
        window.location.assign("/admin");
      })
      .catch(failed(el));
  }
  var loginBtn = document.querySelector("[data-passkey-login]");
  if (loginBtn && PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then(function (yes) {
      if (yes && !conditional) {
        conditionalEnded = signIn(loginBtn, loginBtn.getAttribute("data-passkey-login"), loginBtn.getAttribute("data-passkey-finish"), "conditional");
      }
    }, function () {});
  }
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-passkey-login], [data-passkey-mfa]");
    if (!btn) return;
    if (conditional) { conditional.abort(); conditional = { abort: function () {} }; }
    status(btn, "", true);
    btn.disabled = true;
    var begin = btn.getAttribute("data-passkey-login") || btn.getAttribute("data-passkey-mfa");
    conditionalEnded
      .then(function () { return signIn(btn, begin, btn.getAttribute("data-passkey-finish"), null); })
      .then(function () { btn.disabled = false; });
  });

  // ---- the step-up dialog ----
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-passkey-reauth]");
    if (!btn) return;
    btn.disabled = true;
    status(btn, "", true);
    optionsFor(btn, btn.getAttribute("data-passkey-reauth"))
      .then(function (a) { return navigator.credentials.get({ publicKey: requestOptions(check(btn, a).options) }); })
      .then(function (cred) { return post(btn.getAttribute("data-passkey-finish"), { credential: credentialJson(cred) }); })
      .then(function (a) {
        check(btn, a);
        document.dispatchEvent(new CustomEvent("fbReauthed"));
      })
      .catch(failed(btn))
      .then(function () { if (btn.isConnected) btn.disabled = false; });
  });
})();
