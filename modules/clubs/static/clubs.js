// Clubs pages: charts (Chart.js, vendored), the gallery lightbox, the
// online/offline indicator, progress bars, and the attendance form's retry
// on a weak connection. Everything works without this file except the
// charts (their figures are also in the tables and lists of the page).
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  function charts() {
    if (typeof window.Chart === "undefined") return;
    document.querySelectorAll(".chart-box").forEach(function (box) {
      var canvas = box.querySelector("canvas");
      if (!canvas) return;
      var d = JSON.parse(box.getAttribute("data-series") || "{}");
      var kind = box.getAttribute("data-chart") || "bar";
      var primary = getComputedStyle(document.documentElement).getPropertyValue("--primary").trim() || "#FF6B35";
      new window.Chart(canvas, {
        type: kind,
        data: { labels: d.labels || [], datasets: [{ label: box.getAttribute("data-label") || "", data: d.values || [], backgroundColor: primary, borderColor: primary, tension: 0.25 }] },
        options: { responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
      });
      box.classList.add("loaded");
    });
  }

  function progress() {
    document.querySelectorAll(".progress-bar[data-width]").forEach(function (bar) {
      var w = Math.max(0, Math.min(100, parseInt(bar.getAttribute("data-width"), 10) || 0));
      bar.style.width = w + "%";
    });
  }

  function network() {
    var els = document.querySelectorAll(".net-status");
    function show() {
      els.forEach(function (el) {
        var on = navigator.onLine;
        el.textContent = on ? el.getAttribute("data-online") : el.getAttribute("data-offline");
        el.classList.toggle("offline", !on);
      });
    }
    window.addEventListener("online", show);
    window.addEventListener("offline", show);
    show();
  }

  function lightbox() {
    var links = document.querySelectorAll("a[data-lightbox]");
    if (!links.length || typeof HTMLDialogElement === "undefined") return;
    var dialog = document.querySelector("dialog.lightbox");
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.className = "lightbox";
      dialog.innerHTML = '<button type="button" class="lightbox-close btn btn-secondary">×</button><img alt=""><p class="lightbox-caption"></p>';
      document.body.appendChild(dialog);
    }
    var img = dialog.querySelector("img");
    var caption = dialog.querySelector(".lightbox-caption");
    dialog.querySelector(".lightbox-close").addEventListener("click", function () { dialog.close(); });
    dialog.addEventListener("click", function (e) { if (e.target === dialog) dialog.close(); });
    links.forEach(function (a) {
      a.addEventListener("click", function (e) {
        e.preventDefault();
        img.src = a.getAttribute("data-lightbox");
        img.alt = a.getAttribute("data-caption") || "";
        caption.textContent = a.getAttribute("data-caption") || "";
        dialog.showModal();
      });
    });
  }

  // The attendance form: sent with fetch so that a dropped connection is
  // retried with the same submission id (the server recognises a retry and
  // answers as the first time); nothing typed is lost meanwhile.
  function retryForms() {
    document.querySelectorAll("form[data-retry]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.fetch || !window.FormData) return;
        e.preventDefault();
        var note = form.querySelector(".retry-note");
        var button = form.querySelector("button[type=submit]");
        if (button) button.disabled = true;
        var body = new FormData(form);
        var attempt = 0;
        function send() {
          attempt += 1;
          fetch(form.action, { method: "POST", body: body, credentials: "same-origin" }).then(function (r) {
            return r.text().then(function (html) {
              document.open(); document.write(html); document.close();
            });
          }).catch(function () {
            if (note) note.hidden = false;
            var wait = Math.min(30000, 1000 * Math.pow(2, attempt));
            if (navigator.onLine) setTimeout(send, wait);
            else window.addEventListener("online", send, { once: true });
          });
        }
        send();
      });
    });
  }

  ready(function () {
    progress();
    network();
    lightbox();
    retryForms();
    charts();
    document.querySelectorAll(".toast").forEach(function (t) {
      setTimeout(function () { t.classList.add("toast-hide"); }, 6000);
    });
  });
})();
