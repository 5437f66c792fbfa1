"use strict";
(() => {
  const form = document.getElementById("key-form");
  const created = document.getElementById("key-created");
  /** The settings a key form holds (see key_fields.html): an empty pool or limit is "none" (null). */
  function settingsOf(box, prefix) {
    const pool = [...box.querySelectorAll("input[name=model_pool]:checked")].map((check) => check.value);
    const limit = (id) => {
      const value = document.getElementById(`${prefix}-${id}`).value.trim();
      return value === "" ? null : Number(value);
    };
    return {
      name: document.getElementById(`${prefix}-name`).value.trim(),
      model_pool: pool.length ? pool : null,
      optimize_mode: document.getElementById(`${prefix}-mode`).value,
      rpm_limit: limit("rpm"),
      tpm_limit: limit("tpm"),
    };
  }

  Outrider.onSubmit(form, "key-error", async () => {
    const body = settingsOf(form, "key");
    if (!body.name) throw new Error("give the key a name");
    const key = await Outrider.json("POST", "/keys", body);
    document.getElementById("key-raw").value = key.key;
    form.hidden = true;
    created.hidden = false;
    created.focus();
  });
  const copy = document.getElementById("key-copy");
  if (copy) {
    copy.addEventListener("click", async () => {
      const raw = document.getElementById("key-raw");
      const status = document.getElementById("key-copied");
      try {
        await navigator.clipboard.writeText(raw.value);
        status.textContent = "Copied to the clipboard.";
      } catch (_) {
        raw.select();
        status.textContent = "Selected: press Ctrl+C (or Cmd+C) to copy.";
      }
    });
  }
  const done = document.getElementById("key-done");
  if (done) done.addEventListener("click", () => window.location.reload());

  const editCard = document.getElementById("edit-card");
  const editForm = document.getElementById("edit-form");
  const dataEl = document.getElementById("keys-data");
  const editable = dataEl ? JSON.parse(dataEl.textContent) : [];
  let editing = null;
  let opener = null;

  function closeEdit() {
    editCard.hidden = true;
    editing = null;
    if (opener) opener.focus();
  }

  for (const button of document.querySelectorAll("button.edit")) {
    button.addEventListener("click", () => {
      editing = editable.find((k) => k.id === button.dataset.keyId);
      if (!editing) return;
      opener = button;
      document.getElementById("edit-title").textContent = `Edit key "${editing.name}"`;
      document.getElementById("edit-name").value = editing.name;
      for (const check of editForm.querySelectorAll("input[name=model_pool]")) {
        check.checked = (editing.model_pool || []).includes(check.value);
      }
      document.getElementById("edit-mode").value = editing.optimize_mode;
      document.getElementById("edit-rpm").value = editing.rpm_limit ?? "";
      document.getElementById("edit-tpm").value = editing.tpm_limit ?? "";
      Outrider.showError("edit-error", null);
      editCard.hidden = false;
      editCard.focus();
    });
  }
  if (editForm) {
    document.getElementById("edit-cancel").addEventListener("click", closeEdit);
    editCard.addEventListener("keydown", (event) => {
      if (event.key === "Escape") closeEdit();
    });
    // The same PATCH /keys/{id} as the API: its refusals (pool outside the caller's, bad limits) show here.
    Outrider.onSubmit(editForm, "edit-error", async () => {
      const body = settingsOf(editForm, "edit");
      if (!body.name) throw new Error("give the key a name");
      await Outrider.json("PATCH", `/keys/${encodeURIComponent(editing.id)}`, body);
      window.location.reload();
    });
  }

  for (const button of document.querySelectorAll("button.revoke")) {
    const question = `Revoke the key "${button.dataset.keyName}"? Calls made with it will be refused from now on.`;
    Outrider.onConfirmedClick(button, question, "page-error", async () => {
      await Outrider.json("DELETE", `/keys/${encodeURIComponent(button.dataset.keyId)}`);
      window.location.reload();
    });
  }
})();
