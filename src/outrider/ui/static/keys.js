"use strict";
(() => {
  const form = document.getElementById("key-form");
  const created = document.getElementById("key-created");
  Outrider.onSubmit(form, "key-error", async () => {
    const pool = [...form.querySelectorAll("input[name=model_pool]:checked")].map((box) => box.value);
    const body = {
      name: document.getElementById("key-name").value.trim(),
      optimize_mode: document.getElementById("key-mode").value,
    };
    if (!body.name) throw new Error("give the key a name");
    if (pool.length) body.model_pool = pool;
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

  for (const button of document.querySelectorAll("button.revoke")) {
    button.addEventListener("click", async () => {
      const name = button.dataset.keyName;
      if (!window.confirm(`Revoke the key "${name}"? Calls made with it will be refused from now on.`)) return;
      button.disabled = true;
      try {
        await Outrider.json("DELETE", `/keys/${encodeURIComponent(button.dataset.keyId)}`);
        window.location.reload();
      } catch (error) {
        button.disabled = false;
        Outrider.showError("page-error", error);
      }
    });
  }
})();
