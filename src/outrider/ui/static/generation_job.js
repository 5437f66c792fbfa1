/* A generation job's page: polls GET /generate/jobs/{id} each second until it ends, then links its version. */
"use strict";
(() => {
  const job = JSON.parse(document.getElementById("gen-data").textContent);
  const path = `/generate/jobs/${encodeURIComponent(job.job_id)}`;
  const ACTIVE = ["queued", "running"];

  function show(current) {
    const status = document.getElementById("gen-status");
    status.textContent = current.status;
    status.className = `badge status-${current.status}`;
    const bar = document.getElementById("gen-progress");
    bar.max = current.num_requested;
    bar.value = current.num_examples;
    document.getElementById("gen-count").textContent = `${current.num_examples} of ${current.num_requested} examples`;
    const rejected = (current.progress || {}).rejected;
    if (typeof rejected === "number") document.getElementById("gen-rejected").textContent = String(rejected);
    if (current.dataset_version) {
      const name = current.dataset_name;
      const link = Outrider.el(
        "a",
        { href: `/ui/datasets/${encodeURIComponent(name)}?version=${current.dataset_version}` },
        `${name} v${current.dataset_version}`,
      );
      document.getElementById("gen-version").replaceChildren(link);
    }
    if (current.error) Outrider.showError("gen-error", new Error(current.error));
    const stop = document.getElementById("gen-stop");
    if (stop) stop.hidden = !ACTIVE.includes(current.status);
  }

  async function poll() {
    try {
      const current = await Outrider.json("GET", path);
      show(current);
      if (ACTIVE.includes(current.status)) setTimeout(poll, 1000);
    } catch (error) {
      Outrider.showError("gen-error", error);
    }
  }

  const question = "Stop this job? The examples written so far are kept.";
  Outrider.onConfirmedClick(document.getElementById("gen-stop"), question, "gen-error", async () => {
    show(await Outrider.json("POST", `${path}/stop`));
  });

  if (ACTIVE.includes(job.status)) poll();
})();
