"use strict";
(() => {
  const record = JSON.parse(document.getElementById("record-data").textContent);
  const textBox = document.getElementById("record-text");
  const mentions = document.getElementById("record-mentions");

  function inputText(input) {
    if (input && typeof input.text === "string") return input.text;
    if (input && Array.isArray(input.text)) return input.text.join("\n\n");
    if (input && Array.isArray(input.messages)) return input.messages.map((m) => `${m.role}: ${typeof m.content === "string" ? m.content : JSON.stringify(m.content)}`).join("\n");
    if (input && typeof input.prompt === "string") return input.prompt;
    return JSON.stringify(input);
  }

  const text = inputText(record.input);
  const extraction = record.task === "extract" && record.output && !Array.isArray(record.output);
  if (extraction) {
    const spans = Highlight.collect(record.output, text);
    Highlight.draw(textBox, text, spans);
    Highlight.list(mentions, spans, Highlight.classifications(record.output));
  } else {
    textBox.textContent = text;
    const output = typeof record.output === "string" ? record.output : JSON.stringify(record.output);
    mentions.replaceChildren(Outrider.el("li", {}, Outrider.el("strong", {}, "output"), `: ${output}`));
  }

  const form = document.getElementById("feedback-form");
  if (!form) return;
  const correction = document.getElementById("correction");
  const corrected = document.getElementById("corrected");
  const existing = record.feedback && record.feedback.corrected_output;
  const start = existing !== null && existing !== undefined ? existing : record.output;
  corrected.value = typeof start === "string" && !extraction ? start : JSON.stringify(start, null, 2);

  function verdict() {
    const checked = form.querySelector("input[name=verdict]:checked");
    return checked ? checked.value : null;
  }
  const sync = () => {
    correction.hidden = verdict() !== "incorrect";
  };
  form.addEventListener("change", sync);
  sync();

  Outrider.onSubmit(form, "feedback-error", async () => {
    const chosen = verdict();
    if (!chosen) throw new Error("choose correct or incorrect");
    const body = { verdict: chosen };
    const notes = document.getElementById("notes").value.trim();
    if (notes) body.notes = notes;
    if (chosen === "incorrect") {
      if (extraction) {
        try {
          body.corrected_output = JSON.parse(corrected.value);
        } catch (error) {
          throw new Error(`the corrected output is not valid JSON: ${error.message}`);
        }
      } else {
        body.corrected_output = corrected.value;
      }
    }
    const saved = await Outrider.json("POST", `/inferences/${encodeURIComponent(record.inference_id)}/feedback`, body);
    const current = document.getElementById("feedback-current");
    current.replaceChildren("Marked ", Outrider.el("span", { class: `badge ${saved.verdict === "correct" ? "good" : "bad"}` }, saved.verdict));
    document.getElementById("feedback-saved").textContent = "Saved.";
  });
})();
