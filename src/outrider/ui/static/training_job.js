/* A training job's page: polls the job for status and progress, follows its log (the loss curve and the log
   tail), lists its checkpoints with their validation metrics (a chart and a table: download, continue from
   one), and stops or deletes the job. Everything through /felix/training-jobs. */
"use strict";
(() => {
  const data = JSON.parse(document.getElementById("job-data").textContent);
  const job = data.job;
  const path = `/felix/training-jobs/${encodeURIComponent(job.id)}`;
  const ACTIVE = ["requested", "running"];
  const METRICS = [
    ["f1", "#1d4ed8"],
    ["precision", "#116329"],
    ["recall", "#b35900"],
    ["accuracy", "#6f42c1"],
    ["exact_match", "#a40e26"],
  ];
  const TAIL_LINES = 200;
  const steps = [];
  const losses = [];
  const plots = {};
  let checkpoints = data.checkpoints;
  let checkpointCount = checkpoints.length;

  /** Draw (or update) a uPlot line chart of ``series`` ([label, colour, values]) against ``xs`` in ``boxId``. */
  function chart(boxId, emptyId, xs, series, yLabel) {
    document.getElementById(emptyId).hidden = xs.length > 0;
    if (!xs.length || typeof uPlot === "undefined") return;
    const values = [xs, ...series.map((s) => s[2])];
    if (plots[boxId] && plots[boxId].series.length === values.length) {
      plots[boxId].setData(values);
      return;
    }
    if (plots[boxId]) plots[boxId].destroy();
    const box = document.getElementById(boxId);
    plots[boxId] = new uPlot(
      {
        width: Math.max(260, box.clientWidth),
        height: 220,
        scales: { x: { time: false } },
        series: [{ label: "step" }, ...series.map(([label, stroke]) => ({ label, stroke, width: 2, points: { show: true } }))],
        axes: [{ label: "step" }, { label: yLabel }],
      },
      values,
      box,
    );
  }

  const drawLoss = () => chart("loss-chart", "loss-empty", steps, [["loss", "#b44", losses]], "loss");

  function metricText(metrics) {
    return METRICS.map(([k]) => k)
      .filter((k) => typeof metrics[k] === "number")
      .map((k) => `${k} ${metrics[k].toFixed(3)}`)
      .join(" · ");
  }

  function drawCheckpoints() {
    const scored = checkpoints.filter((c) => METRICS.some(([k]) => typeof c.metrics[k] === "number"));
    const shown = METRICS.filter(([k]) => scored.some((c) => typeof c.metrics[k] === "number"));
    chart(
      "metrics-chart",
      "metrics-empty",
      scored.map((c) => c.step),
      shown.map(([k, colour]) => [k, colour, scored.map((c) => (typeof c.metrics[k] === "number" ? c.metrics[k] : null))]),
      "validation",
    );
    const table = document.getElementById("checkpoints-table");
    document.getElementById("checkpoints-empty").hidden = checkpoints.length > 0;
    table.hidden = checkpoints.length === 0;
    const rows = checkpoints.map((c) => {
      const download = Outrider.el(
        "a",
        { href: `${path}/download?checkpoint_id=${encodeURIComponent(c.id)}`, download: "" },
        "Download",
        Outrider.el("span", { class: "sr-only" }, ` checkpoint at step ${c.step}`),
      );
      const actions = Outrider.el("td", { class: "actions" }, download);
      if (data.can_write) {
        actions.append(
          " ",
          Outrider.el(
            "a",
            { href: `/ui/training?from=${encodeURIComponent(c.id)}` },
            "Continue training",
            Outrider.el("span", { class: "sr-only" }, ` from step ${c.step}`),
          ),
        );
      }
      return Outrider.el(
        "tr",
        { "data-checkpoint-id": c.id },
        Outrider.el("td", {}, Outrider.el("code", {}, c.id)),
        Outrider.el("td", { class: "num" }, String(c.step)),
        Outrider.el("td", { class: "num" }, c.epoch === null ? "-" : String(c.epoch)),
        Outrider.el("td", {}, metricText(c.metrics) || "-"),
        Outrider.el("td", {}, new Date(c.created).toISOString().replace("T", " ").slice(0, 19)),
        actions,
      );
    });
    table.querySelector("tbody").replaceChildren(...rows);
  }

  async function refreshCheckpoints() {
    try {
      checkpoints = (await Outrider.json("GET", `${path}/checkpoints`)).checkpoints;
      drawCheckpoints();
    } catch (error) {
      Outrider.showError("job-error", error);
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
    if (current.metrics) document.getElementById("job-metrics").textContent = metricText(current.metrics) || "-";
    if (current.error) Outrider.showError("job-error", new Error(current.error));
    const stop = document.getElementById("job-stop");
    if (stop) stop.hidden = !ACTIVE.includes(current.status);
    if ((p.checkpoints || 0) !== checkpointCount) {
      checkpointCount = p.checkpoints || 0;
      refreshCheckpoints();
    }
  }

  async function poll() {
    try {
      const current = await Outrider.json("GET", path);
      show(current);
      if (ACTIVE.includes(current.status)) setTimeout(poll, 1000);
      else if (current.status === "complete" && ACTIVE.includes(job.status)) window.location.reload(); // its per-label table
      else refreshCheckpoints(); // the checkpoint saved on stopping
    } catch (error) {
      Outrider.showError("job-error", error);
    }
  }

  const LINE = /step (\d+)\/\S+ epoch \S+ loss ([0-9.eE+-]+)/;
  const tail = document.getElementById("log-tail");
  const tailLines = [];

  function addToTail(line) {
    tailLines.push(line);
    if (tailLines.length > TAIL_LINES) tailLines.shift();
    const atBottom = tail.scrollTop + tail.clientHeight >= tail.scrollHeight - 4;
    tail.textContent = tailLines.join("\n");
    if (atBottom) tail.scrollTop = tail.scrollHeight;
  }

  async function followLog() {
    try {
      const response = await Outrider.request("GET", `${path}/logs?follow=true`);
      for await (const line of Outrider.pieces(response, "\n")) {
        addToTail(line);
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

  const stopQuestion = "Stop this training job? The last checkpoint is kept.";
  Outrider.onConfirmedClick(document.getElementById("job-stop"), stopQuestion, "job-error", async () => {
    show(await Outrider.json("POST", `${path}/stop`));
  });
  const deleteQuestion = `Delete "${job.model_name}" with its checkpoints and weights? This cannot be undone.`;
  Outrider.onConfirmedClick(document.getElementById("job-delete"), deleteQuestion, "job-error", async () => {
    await Outrider.json("DELETE", path);
    window.location.assign("/ui/training");
  });

  show(job);
  drawCheckpoints();
  poll();
  followLog();
})();
