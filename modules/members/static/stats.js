// Members statistics: draws each `.mem-chart` with Chart.js (vendored in
// the core's static files). The figures are also in the table under each
// chart, so the page says everything without this script.
(function () {
  "use strict";
  var palette = ["--primary", "--accent", "--danger", "--warning", "--success"];
  function color(i) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(palette[i % palette.length]).trim();
    return v || ["#FF6B35", "#2B6CB0", "#C53030", "#B7791F", "#2F855A"][i % 5];
  }
  function draw() {
    if (typeof window.Chart === "undefined") return;
    document.querySelectorAll(".mem-chart").forEach(function (box) {
      var canvas = box.querySelector("canvas");
      if (!canvas) return;
      var d = JSON.parse(box.getAttribute("data-series") || "{}");
      var sets = (d.datasets || []).map(function (s, i) {
        return { label: s.label, data: s.values, backgroundColor: color(i), borderColor: color(i), tension: 0.25 };
      });
      new window.Chart(canvas, {
        type: box.getAttribute("data-chart") || "bar",
        data: { labels: d.labels || [], datasets: sets },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          plugins: { legend: { display: sets.length > 1 } },
          scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }
        }
      });
      box.classList.add("loaded");
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
