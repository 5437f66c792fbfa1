/* Users and roles (owners): add, change a role, reset a password, remove (disable) or restore, all through
   POST /users and PATCH /users/{id}; the API's refusals (the last owner, a name in use) show on the page. */
"use strict";
(() => {
  const form = document.getElementById("user-form");
  const created = document.getElementById("user-created");
  const patch = (id, body) => Outrider.json("PATCH", `/users/${encodeURIComponent(id)}`, body);

  Outrider.onSubmit(form, "user-error", async () => {
    const body = {
      username: document.getElementById("user-name").value.trim(),
      role: document.getElementById("user-role").value,
    };
    const email = document.getElementById("user-email").value.trim();
    const password = document.getElementById("user-password").value;
    if (!body.username) throw new Error("give the user a name");
    if (email) body.email = email;
    if (password) body.password = password;
    const user = await Outrider.json("POST", "/users", body);
    if (!user.password) {
      window.location.reload();
      return;
    }
    document.getElementById("user-created-name").textContent = user.username;
    document.getElementById("user-created-password").value = user.password;
    form.hidden = true;
    created.hidden = false;
    created.focus();
  });
  document.getElementById("user-done").addEventListener("click", () => window.location.reload());

  for (const roleForm of document.querySelectorAll("form.role-form")) {
    Outrider.onSubmit(roleForm, "page-error", async () => {
      const select = roleForm.querySelector("select");
      try {
        await patch(roleForm.dataset.userId, { role: select.value });
      } catch (error) {
        select.value = [...select.options].find((option) => option.defaultSelected).value; // the role it kept
        throw error;
      }
      window.location.reload();
    });
  }

  for (const button of document.querySelectorAll("button.remove")) {
    const question = `Remove ${button.dataset.username}? Their sessions end and their keys stop working.`;
    Outrider.onConfirmedClick(button, question, "page-error", async () => {
      await patch(button.dataset.userId, { disabled: true });
      window.location.reload();
    });
  }
  for (const button of document.querySelectorAll("button.restore")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await patch(button.dataset.userId, { disabled: false });
        window.location.reload();
      } catch (error) {
        button.disabled = false;
        Outrider.showError("page-error", error);
      }
    });
  }

  const card = document.getElementById("password-card");
  const passwordForm = document.getElementById("password-form");
  let target = null;
  let opener = null;
  function closeCard() {
    card.hidden = true;
    if (opener) opener.focus();
  }
  for (const button of document.querySelectorAll("button.reset")) {
    button.addEventListener("click", () => {
      target = button.dataset.userId;
      opener = button;
      document.getElementById("password-title").textContent = `Reset the password of ${button.dataset.username}`;
      document.getElementById("new-password").value = "";
      document.getElementById("password-saved").textContent = "";
      Outrider.showError("password-error", null);
      card.hidden = false;
      document.getElementById("new-password").focus();
    });
  }
  document.getElementById("password-cancel").addEventListener("click", closeCard);
  card.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeCard();
  });
  Outrider.onSubmit(passwordForm, "password-error", async () => {
    const user = await patch(target, { password: document.getElementById("new-password").value });
    document.getElementById("new-password").value = "";
    document.getElementById("password-saved").textContent = `Saved: ${user.username} signs in with the new password.`;
  });
})();
