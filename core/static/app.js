// Shrooms — small progressive enhancements. Every page works without this
// file; the Content-Security-Policy forbids inline scripts and handlers, so
// behaviour hangs on data- attributes:
//   form[data-confirm], a[data-confirm], button[data-confirm]  ask before acting
//   button[data-copy]                                          copies its value
//   input[data-color-input]                                    gets a colour picker
//   time[datetime]                                             shown in local time
// It also sends the CSRF token with htmx requests and folds the navigation
// behind the menu button on small screens.
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // htmx: the server accepts the token as a header on state-changing requests.
  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) event.detail.headers["X-CSRF-Token"] = token;
  });

  // Confirmation before destructive actions.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var submitter = event.submitter;
    var message = (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("click", function (event) {
    var link = event.target instanceof Element ? event.target.closest("a[data-confirm]") : null;
    if (link && !window.confirm(link.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // Copy buttons (hidden in the markup: useless without script).
  function setupCopy(root) {
    if (!navigator.clipboard) return;
    root.querySelectorAll("button[data-copy]").forEach(function (button) {
      if (button.dataset.ready) return;
      button.dataset.ready = "1";
      button.hidden = false;
      var label = button.textContent;
      var done = (button.getAttribute("data-copied") || "✓") + " ✓";
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
          button.textContent = done;
          window.setTimeout(function () { button.textContent = label; }, 2000);
        });
      });
    });
  }

  // A native colour picker next to "#rrggbb" text fields; the text field stays
  // the source of truth so an empty value still means "default colour".
  function setupColors(root) {
    root.querySelectorAll("input[data-color-input]").forEach(function (input) {
      if (input.dataset.ready) return;
      input.dataset.ready = "1";
      var picker = document.createElement("input");
      picker.type = "color";
      picker.tabIndex = -1;
      picker.setAttribute("aria-hidden", "true");
      var valid = /^#[0-9a-fA-F]{6}$/;
      picker.value = valid.test(input.value) ? input.value.toLowerCase() : (input.placeholder || "#000000").toLowerCase();
      var wrap = document.createElement("div");
      wrap.className = "color-pair";
      input.parentNode.insertBefore(wrap, input);
      wrap.appendChild(input);
      wrap.appendChild(picker);
      picker.addEventListener("input", function () { input.value = picker.value.toUpperCase(); });
      input.addEventListener("input", function () {
        if (valid.test(input.value)) picker.value = input.value.toLowerCase();
      });
    });
  }

  // UTC timestamps rendered by the server, shown in the reader's time zone.
  function localiseTimes(root) {
    if (!window.Intl || !Intl.DateTimeFormat) return;
    var lang = document.documentElement.lang || undefined;
    var format;
    try {
      format = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
    } catch (e) {
      return;
    }
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      if (el.dataset.ready) return;
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      el.dataset.ready = "1";
      el.title = el.textContent;
      el.textContent = format.format(d);
    });
  }

  // Navigation behind a menu button on small screens.
  function setupNav() {
    var toggle = document.querySelector(".nav-toggle");
    var nav = document.getElementById("site-nav");
    if (!toggle || !nav) return;
    toggle.hidden = false;
    function set(open) {
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      nav.classList.toggle("is-open", open);
    }
    toggle.addEventListener("click", function () {
      set(toggle.getAttribute("aria-expanded") !== "true");
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && nav.classList.contains("is-open")) {
        set(false);
        toggle.focus();
      }
    });
  }

  // <details> dropdowns close on Escape and on a click elsewhere.
  function setupDropdowns() {
    document.addEventListener("click", function (event) {
      document.querySelectorAll("details.dropdown[open]").forEach(function (d) {
        if (!d.contains(event.target)) d.open = false;
      });
    });
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Escape") return;
      document.querySelectorAll("details.dropdown[open]").forEach(function (d) {
        d.open = false;
        var summary = d.querySelector("summary");
        if (summary && d.contains(document.activeElement)) summary.focus();
      });
    });
  }

  // Move focus to the error summary so screen readers and keyboards land on it.
  function focusErrors() {
    var summary = document.getElementById("form-errors");
    if (!summary) return;
    var firstInvalid = document.querySelector('[aria-invalid="true"]');
    if (firstInvalid) firstInvalid.focus();
  }

  function enhance(root) {
    setupCopy(root);
    setupColors(root);
    localiseTimes(root);
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupNav();
    setupDropdowns();
    enhance(document);
    focusErrors();
  });

  // Content swapped in by htmx gets the same treatment.
  document.addEventListener("htmx:load", function (event) {
    if (event.target instanceof Element) enhance(event.target);
  });
})();
