// The usage dashboard's charts (Chart.js): calls per day stacked by tool, and p50/p95 latency with the error rate.
// The range buttons reload the charts and the summary; "Export CSV" downloads the rows the filters select.
(() => {
  "use strict";
  const charts = {};

  function draw(id, config) {
    const canvas = document.getElementById(id);
    if (!canvas || !window.Chart) return;
    charts[id]?.destroy();
    charts[id] = new window.Chart(canvas, config);
  }

  async function load(root, days) {
    const response = await fetch(`${root.dataset.chartsUrl}?days=${days}`, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const data = await response.json();
    draw("chart-calls", {
      type: "bar",
      data: { labels: data.calls.labels, datasets: data.calls.datasets },
      options: { responsive: true, animation: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
    });
    draw("chart-latency", {
      type: "line",
      data: {
        labels: data.latency.labels,
        datasets: [
          { label: "p50 (ms)", data: data.latency.p50, yAxisID: "ms", spanGaps: true },
          { label: "p95 (ms)", data: data.latency.p95, yAxisID: "ms", spanGaps: true },
          { label: "errors (%)", data: data.latency.error_rate, yAxisID: "percent", spanGaps: true },
        ],
      },
      options: {
        responsive: true,
        animation: false,
        scales: {
          ms: { type: "linear", position: "left", beginAtZero: true, title: { display: true, text: "ms" } },
          percent: { type: "linear", position: "right", min: 0, max: 100, grid: { drawOnChartArea: false }, title: { display: true, text: "%" } },
        },
      },
    });
    // What the charts received, for people reading the page source and for the browser test.
    root.dataset.callsTotal = String(data.calls.total);
    root.dataset.chartsLoaded = "true";
  }

  function setup(root) {
    const buttons = root.querySelectorAll("[data-range]");
    buttons.forEach((button) =>
      button.addEventListener("click", () => {
        buttons.forEach((other) => {
          other.classList.toggle("button-primary", other === button);
          other.setAttribute("aria-pressed", String(other === button));
        });
        const summary = document.getElementById("usage-summary");
        summary?.setAttribute("hx-get", summary.getAttribute("hx-get").replace(/days=\d+/, `days=${button.dataset.range}`));
        if (window.htmx && summary) window.htmx.process(summary);
        document.body.dispatchEvent(new Event("usage-range"));
        load(root, button.dataset.range);
      }),
    );
    const exporter = document.getElementById("calls-export");
    exporter?.addEventListener("click", () => {
      const form = document.getElementById("calls-filter");
      const query = new URLSearchParams(new FormData(form));
      for (const [name, value] of [...query]) if (!value) query.delete(name);
      window.location.href = `${exporter.dataset.url}?${query}`;
    });
    const pressed = root.querySelector("[data-range][aria-pressed=true]");
    load(root, pressed ? pressed.dataset.range : 30);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const root = document.getElementById("usage");
    if (root) setup(root);
  });
})();
