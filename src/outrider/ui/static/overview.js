"use strict";
(() => {
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const box = document.getElementById("overview-chart");
  if (!box || typeof uPlot === "undefined") return;
  const width = Math.max(280, box.clientWidth);
  new uPlot(
    {
      width,
      height: 260,
      series: [
        {},
        { label: "requests", stroke: "#2563eb", width: 2, scale: "n" },
        { label: "errors", stroke: "#b91c1c", width: 2, scale: "n" },
        { label: "spend ($)", stroke: "#15803d", width: 2, scale: "usd", value: (_u, v) => (v === null ? "-" : `$${v.toFixed(6)}`) },
      ],
      axes: [{}, { scale: "n", label: "requests" }, { scale: "usd", side: 1, label: "USD", grid: { show: false }, size: 70, values: (_u, ticks) => ticks.map((t) => `$${Number(t.toPrecision(2))}`) }],
    },
    [data.x, data.requests, data.errors, data.spend],
    box,
  );
})();
