"use strict";
Outrider.onSubmit(document.getElementById("login-form"), "login-error", async () => {
  const login = document.getElementById("login-name").value.trim();
  const password = document.getElementById("login-password").value;
  if (!login || !password) throw new Error("enter your username (or email) and password");
  await Outrider.json("POST", "/auth/login", { username: login, password });
  // Back to the page that sent here: only a dashboard path of this site (never another origin).
  const next = new URLSearchParams(window.location.search).get("next") || "";
  window.location.assign(/^\/ui\/(?![\/\\])/.test(next) ? next : "/ui/");
});
