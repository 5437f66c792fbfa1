/* Datasets: upload (multipart POST /datasets), generation (POST /generate) and deletion (DELETE /datasets/{name}),
   each through the JSON API; its refusals show on the page in its own words. */
"use strict";
Outrider.onSubmit(document.getElementById("upload-form"), "upload-error", async () => {
  const name = document.getElementById("ds-name").value.trim();
  const file = document.getElementById("ds-file").files[0];
  if (!name) throw new Error("give the dataset a name");
  if (!file) throw new Error("choose a JSONL file");
  const form = new FormData();
  form.append("name", name);
  form.append("task_type", document.getElementById("ds-task").value);
  form.append("file", file, file.name);
  const response = await Outrider.request("POST", "/datasets", { body: form });
  const version = await response.json();
  window.location.assign(`/ui/datasets/${encodeURIComponent(version.name)}?version=${version.version}`);
});

Outrider.onSubmit(document.getElementById("generate-form"), "generate-error", async () => {
  const value = (id) => document.getElementById(id).value.trim();
  const body = {
    task_type: value("gen-task"),
    dataset_name: value("gen-name"),
    num_examples: Number(value("gen-count")),
    labels: value("gen-labels").split(",").map((label) => label.trim()).filter(Boolean),
  };
  if (!body.dataset_name) throw new Error("give the dataset a name");
  if (value("gen-domain")) body.domain_description = value("gen-domain");
  if (value("gen-teacher")) body.teacher_model = value("gen-teacher");
  const started = await Outrider.json("POST", "/generate", body);
  window.location.assign(`/ui/generation/${encodeURIComponent(started.job_id)}`);
});

(() => {
  const button = document.getElementById("dataset-delete");
  if (!button) return;
  const name = button.dataset.name;
  const question = `Delete the dataset "${name}" and every version of it? This cannot be undone.`;
  Outrider.onConfirmedClick(button, question, "page-error", async () => {
    await Outrider.json("DELETE", `/datasets/${encodeURIComponent(name)}`);
    window.location.assign("/ui/datasets");
  });
})();
