/* The judge form of a record (record page and review queue): POST /inferences/{id}/judge, then shows the
   verdict. A judge that fails leaves the record unjudged; the server's reason is shown. */
"use strict";
(() => {
  const form = document.getElementById("judge-form");
  if (!form) return;
  const record = JSON.parse(document.getElementById("record-data").textContent);
  const BADGES = { pass: "good", fail: "bad", uncertain: "warn" };
  Outrider.onSubmit(form, "judge-error", async () => {
    const body = { judge_model: document.getElementById("judge-model").value };
    const judged = await Outrider.json("POST", `/inferences/${encodeURIComponent(record.inference_id)}/judge`, body);
    const score = typeof judged.llmaj_score === "number" ? judged.llmaj_score.toFixed(2) : "-";
    document.getElementById("judge-current").replaceChildren(
      Outrider.el("span", { class: `badge ${BADGES[judged.llmaj_verdict] || ""}` }, judged.llmaj_verdict),
      ` score ${score} by ${judged.judge_model}: ${judged.llmaj_reasoning || ""}`,
    );
  });
})();
