"use strict";
Outrider.onSubmit(document.getElementById("training-form"), "training-error", async () => {
  const body = {
    model_name: document.getElementById("t-name").value.trim(),
    base_model: document.getElementById("t-base").value,
    datasets: [...document.querySelectorAll("#t-datasets input:checked")].map((box) => ({ name: box.value })),
    training_type: document.getElementById("t-type").value,
  };
  if (!body.model_name) throw new Error("give the model a name");
  if (!body.datasets.length) throw new Error("tick at least one dataset");
  const epochs = document.getElementById("t-epochs").value;
  const rate = document.getElementById("t-lr").value;
  if (epochs) body.nr_epochs = Number(epochs);
  if (rate) body.learning_rate = Number(rate);
  const job = await Outrider.json("POST", "/felix/training-jobs", body);
  window.location.assign(`/ui/training/${encodeURIComponent(job.id)}`);
});
