// The dashboard's own script: the CSRF header on htmx requests, and the usage chart (uPlot).
(function () {
  "use strict";
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) { event.detail.headers["X-CSRF-Token"] = meta.content; }
  });

  function drawUsage() {
    var data = document.getElementById("usage-data");
    var target = document.getElementById("usage-chart");
    if (!data || !target || typeof uPlot === "undefined") { return; }
    var chart = JSON.parse(data.textContent);
    var names = Object.keys(chart.series);
    if (!chart.x.length || !names.length) { target.textContent = "No usage in the last 30 days."; return; }
    var palette = ["#3c4bd6", "#0b8a5c", "#c2410c", "#9333ea", "#0e7490"];
    var series = [{}].concat(names.map(function (name, i) {
      return { label: name, stroke: palette[i % palette.length], width: 2, fill: "rgba(60,75,214,0.06)" };
    }));
    var values = [chart.x].concat(names.map(function (name) { return chart.series[name]; }));
    var width = Math.max(280, target.clientWidth || 600);
    new uPlot({ width: width, height: 220, series: series, axes: [{}, { size: 50 }], scales: { x: { time: true } } }, values, target);
    target.setAttribute("data-drawn", "true");
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", drawUsage); } else { drawUsage(); }
})();
