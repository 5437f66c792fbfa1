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
