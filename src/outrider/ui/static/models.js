"use strict";
(() => {
  const CLASSES = { ready: "good", loading: "warn", unavailable: "bad" };

  async function check(model) {
    const badge = document.querySelector(`.badge.health[data-model="${CSS.escape(model)}"]`);
    badge.textContent = "checking…";
    badge.className = "badge health";
    try {
      const health = await Outrider.json("GET", `/models/${model.split("/").map(encodeURIComponent).join("/")}/health`);
      badge.textContent = health.status;
      badge.classList.add(CLASSES[health.status] || "");
      badge.title = health.reason || "";
    } catch (error) {
      badge.textContent = "error";
      badge.classList.add("bad");
      badge.title = error.message;
    }
  }

  for (const button of document.querySelectorAll("button.check-health")) {
    button.addEventListener("click", () => check(button.dataset.model));
  }
  const all = document.getElementById("check-all");
  if (all) {
    all.addEventListener("click", () => {
      for (const badge of document.querySelectorAll(".badge.health")) check(badge.dataset.model);
    });
  }
})();
