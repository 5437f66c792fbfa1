/* Evaluations: start one (POST /evaluations) from the list page; on an evaluation's page, poll it while it is
   queued or running and reload when its status changes (its figures are rendered by the server). */
"use strict";
(() => {
  // The models in the order they were checked: the first is the baseline the others are compared with.
  const checked = [];
  const order = document.getElementById("e-order");
  for (const box of document.querySelectorAll("input[name=model]")) {
    box.addEventListener("change", () => {
      const at = checked.indexOf(box.value);
      if (box.checked && at < 0) checked.push(box.value);
      if (!box.checked && at >= 0) checked.splice(at, 1);
      order.textContent = checked.length
        ? `Baseline: ${checked[0]}${checked.length > 1 ? `; compared with it: ${checked.slice(1).join(", ")}` : ""}`
        : "";
    });
  }

  Outrider.onSubmit(document.getElementById("evaluation-form"), "evaluation-error", async () => {
    const models = [...checked];
    if (!models.length) throw new Error("check at least one model");
    const body = { models, dataset: document.getElementById("e-dataset").value };
    const version = document.getElementById("e-version").value;
    const most = document.getElementById("e-max").value;
    if (version) body.version = Number(version);
    if (most) body.max_examples = Number(most);
    const started = await Outrider.json("POST", "/evaluations", body);
    window.location.assign(`/ui/evaluations/${encodeURIComponent(started.id)}`);
  });

  const data = document.getElementById("evaluation-data");
  if (!data) return;
  const shown = JSON.parse(data.textContent);
  if (!["queued", "running"].includes(shown.status)) return;
  const poll = async () => {
    try {
      const now = await Outrider.json("GET", `/evaluations/${encodeURIComponent(shown.id)}`);
      const progress = document.getElementById("evaluation-progress");
      if (progress && now.progress.examples) {
        progress.textContent = `model ${now.progress.model || 0} of ${now.models.length}, example ${now.progress.example || 0} of ${now.progress.examples}`;
      }
      if (!["queued", "running"].includes(now.status)) return window.location.reload();
    } catch (error) {
      Outrider.showError("page-error", error);
    }
    window.setTimeout(poll, 1000);
  };
  window.setTimeout(poll, 1000);
})();
