/* Deployments: create or switch one (PUT /deployments/{name}) and roll it back after a confirmation
   (POST /deployments/{name}/rollback); the page then reloads to show the new target and its history. */
"use strict";
(() => {
  const form = document.getElementById("deploy-form");
  const path = (name) => `/deployments/${encodeURIComponent(name)}`;
  const note = (id) => document.getElementById(id).value.trim() || undefined;

  Outrider.onSubmit(form, "deploy-error", async () => {
    const nameInput = document.getElementById("deploy-name");
    const name = form.dataset.name || (nameInput ? nameInput.value.trim() : "");
    const modelId = document.getElementById("deploy-target").value.trim();
    if (!name) throw new Error("give the deployment a name");
    if (!modelId) throw new Error("choose the model it serves");
    const saved = await Outrider.json("PUT", path(name), { model_id: modelId, note: note("deploy-note") });
    window.location.assign(`/ui/deployments/${encodeURIComponent(saved.name)}`);
  });

  const rollback = document.getElementById("rollback");
  if (!rollback) return;
  const question = `Roll @${rollback.dataset.name} back to its previous target?`;
  Outrider.onConfirmedClick(rollback, question, "rollback-error", async () => {
    await Outrider.json("POST", `${path(rollback.dataset.name)}/rollback`, { note: note("rollback-note") });
    window.location.reload();
  });
})();
