/* A training job's page: polls the job for status and progress, follows its log for the loss curve. */
"use strict";
(() => {
  const job = JSON.parse(document.getElementById("job-data").textContent);
  const path = `/felix/training-jobs/${encodeURIComponent(job.id)}`;
  const ACTIVE = ["requested", "running"];
  const steps = [];
  const losses = [];
  let plot = null;

  function drawLoss() {
    document.getElementById("loss-empty").hidden = steps.length > 0;
    if (!steps.length || typeof uPlot === "undefined") return;
    const box = document.getElementById("loss-chart");
    const width = Math.max(280, box.clientWidth);
    if (!plot) {
      plot = new uPlot(
        {
          width,
          height: 240,
          scales: { x: { time: false } },
          series: [{ label: "step" }, { label: "loss", stroke: "#b44", width: 2 }],
          axes: [{ label: "step" }, { label: "loss" }],
        },
        [steps, losses],
        box,
      );
    } else {
      plot.setData([steps, losses]);
    }
  }

  function show(current) {
    const status = document.getElementById("job-status");
    status.textContent = current.status;
    status.className = `badge status-${current.status}`;
    const p = current.progress || {};
    const bar = document.getElementById("job-progress");
    if (p.total_steps) {
      bar.max = p.total_steps;
      bar.value = p.step;
      document.getElementById("job-steps").textContent = `step ${p.step} of ${p.total_steps}, epoch ${p.epoch}${p.nr_epochs ? ` of ${p.nr_epochs}` : ""}`;
    } else if (current.status === "complete") {
      bar.max = 1;
      bar.value = 1;
    }
    if (typeof p.loss === "number") document.getElementById("job-loss").textContent = p.loss.toFixed(4);
    if (current.metrics) {
      const m = current.metrics;
      const parts = ["f1", "precision", "recall", "accuracy"].filter((k) => typeof m[k] === "number").map((k) => `${k} ${m[k].toFixed(3)}`);
      document.getElementById("job-metrics").textContent = parts.join(" · ") || "-";
    }
    if (current.error) Outrider.showError("job-error", new Error(current.error));
    const stop = document.getElementById("job-stop");
    if (stop) stop.hidden = !ACTIVE.includes(current.status);
  }

  async function poll() {
    try {
      const current = await Outrider.json("GET", path);
      show(current);
      if (ACTIVE.includes(current.status)) setTimeout(poll, 1000);
    } catch (error) {
      Outrider.showError("job-error", error);
    }
  }

  const LINE = /step (\d+)\/\S+ epoch \S+ loss ([0-9.eE+-]+)/;

  async function followLog() {
    try {
      const response = await Outrider.request("GET", `${path}/logs?follow=true`);
      for await (const line of Outrider.pieces(response, "\n")) {
        const found = LINE.exec(line);
        if (!found) continue;
        steps.push(Number(found[1]));
        losses.push(Number(found[2]));
        drawLoss();
      }
    } catch (error) {
      Outrider.showError("job-error", error);
    }
  }

  const stop = document.getElementById("job-stop");
  if (stop) {
    stop.addEventListener("click", async () => {
      if (!window.confirm("Stop this training job? The last checkpoint is kept.")) return;
      stop.disabled = true;
      try {
        show(await Outrider.json("POST", `${path}/stop`));
      } catch (error) {
        Outrider.showError("job-error", error);
      } finally {
        stop.disabled = false;
      }
    });
  }

  show(job);
  poll();
  followLog();
})();
