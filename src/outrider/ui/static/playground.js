"use strict";
(() => {
  const rows = document.getElementById("entity-rows");
  let rowCount = 0;

  function addEntity(name, description) {
    rowCount += 1;
    const id = `entity-${rowCount}`;
    const nameInput = Outrider.el("input", { id: `${id}-name`, class: "entity-name", value: name || "", placeholder: "person" });
    const descInput = Outrider.el("input", { id: `${id}-desc`, class: "entity-desc", value: description || "", placeholder: "optional description" });
    const remove = Outrider.el("button", { type: "button", class: "link", "aria-label": `Remove entity type ${rowCount}` }, "Remove");
    const row = Outrider.el(
      "div",
      { class: "entity-row" },
      Outrider.el("label", { for: `${id}-name`, class: "sr-only" }, `Entity type ${rowCount}`),
      nameInput,
      Outrider.el("label", { for: `${id}-desc`, class: "sr-only" }, `Description of entity type ${rowCount}`),
      descInput,
      remove,
    );
    remove.addEventListener("click", () => {
      row.remove();
      preview();
    });
    row.addEventListener("input", preview);
    rows.append(row);
  }

  function schema() {
    const entities = [];
    for (const row of rows.querySelectorAll(".entity-row")) {
      const name = row.querySelector(".entity-name").value.trim();
      const description = row.querySelector(".entity-desc").value.trim();
      if (name) entities.push(description ? { name, description } : name);
    }
    const built = {};
    if (entities.length) built.entities = entities;
    const task = document.getElementById("cls-task").value.trim();
    const labels = document.getElementById("cls-labels").value.split(",").map((l) => l.trim()).filter(Boolean);
    if (task && labels.length) {
      built.classifications = [{ task, labels, multi_label: document.getElementById("cls-multi").checked }];
    }
    return built;
  }

  function preview() {
    document.getElementById("schema-preview").textContent = JSON.stringify(schema(), null, 2);
  }

  if (rows) {
    document.getElementById("add-entity").addEventListener("click", () => {
      addEntity();
      rows.lastElementChild.querySelector("input").focus();
    });
    for (const name of ["person", "company", "location"]) addEntity(name);
    for (const id of ["cls-task", "cls-labels", "cls-multi"]) document.getElementById(id).addEventListener("input", preview);
    preview();
  }

  Outrider.onSubmit(document.getElementById("extract-form"), "extract-error", async () => {
    const text = document.getElementById("ex-text").value;
    const built = schema();
    if (!Object.keys(built).length) throw new Error("add at least one entity type or a classification with labels");
    const result = await Outrider.json("POST", "/inference", {
      model_id: document.getElementById("ex-model").value,
      text,
      schema: built,
      threshold: Number(document.getElementById("ex-threshold").value || 0.5),
      include_confidence: true,
      include_spans: true,
    });
    const spans = Highlight.collect(result.result, text);
    Highlight.draw(document.getElementById("extract-highlight"), text, spans);
    Highlight.list(document.getElementById("extract-mentions"), spans, Highlight.classifications(result.result));
    const meta = document.getElementById("extract-meta");
    meta.replaceChildren(
      `${result.model_used} · ${result.latency_ms.toFixed(1)} ms · ${result.usage.total_tokens} tokens · ${Outrider.usd(result.usage.cost)} · `,
      result.inference_id ? Outrider.el("a", { href: `/ui/history/${result.inference_id}` }, "open in history") : "not stored",
    );
    document.getElementById("extract-result").hidden = false;
  });

  function showRouting(decision) {
    const box = document.getElementById("chat-routing");
    box.replaceChildren();
    const facts = [
      ["Routed to", decision.model],
      ["Task", decision.task],
      ["Complexity", decision.complexity],
      ["Confidence", typeof decision.confidence === "number" ? `${(decision.confidence * 100).toFixed(0)}%` : decision.confidence],
      ["Routing time", typeof decision.routing_time_ms === "number" ? `${decision.routing_time_ms.toFixed(1)} ms` : undefined],
    ];
    for (const [name, value] of facts) {
      if (value === undefined || value === null) continue;
      box.append(Outrider.el("dt", {}, name), Outrider.el("dd", {}, String(value)));
    }
    box.hidden = false;
  }

  function showMeta(model, usage, started, firstToken) {
    const total = performance.now() - started;
    const parts = [model, `${total.toFixed(0)} ms total`];
    if (firstToken) parts.push(`${(firstToken - started).toFixed(0)} ms to first token`);
    if (usage) parts.push(`${usage.prompt_tokens} + ${usage.completion_tokens} tokens`, `cost ${Outrider.usd(usage.cost)}`);
    document.getElementById("chat-meta").textContent = parts.join(" · ");
  }

  /** Server-Sent Events from a fetch() body: yields each event's `data:` payload. */
  async function* sseData(response) {
    for await (const event of Outrider.pieces(response, "\n\n")) {
      const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (data) yield data;
    }
  }

  Outrider.onSubmit(document.getElementById("chat-form"), "chat-error", async () => {
    const model = document.getElementById("chat-model").value;
    const messages = [];
    const system = document.getElementById("chat-system").value.trim();
    if (system) messages.push({ role: "system", content: system });
    messages.push({ role: "user", content: document.getElementById("chat-message").value });
    const stream = document.getElementById("chat-stream").checked;
    const body = { model, messages, max_tokens: Number(document.getElementById("chat-max").value || 32), stream };
    const optimize = document.getElementById("chat-optimize").value;
    if (model === "auto" && optimize) body.routing = { optimize };
    if (stream) body.stream_options = { include_usage: true };
    const output = document.getElementById("chat-output");
    output.textContent = "";
    document.getElementById("chat-routing").hidden = true;
    document.getElementById("chat-meta").textContent = "";
    document.getElementById("chat-result").hidden = false;
    const started = performance.now();
    const response = await Outrider.request("POST", "/v1/chat/completions", { json: body });
    if (!stream) {
      const answer = await response.json();
      if (answer.routing) showRouting(answer.routing);
      output.textContent = answer.choices[0].message.content || "";
      showMeta(answer.model, answer.usage, started, null);
      return;
    }
    let usage = null;
    let used = model;
    let firstToken = null;
    for await (const data of sseData(response)) {
      if (data === "[DONE]") break;
      const chunk = JSON.parse(data);
      if (chunk.object === "routing") {
        showRouting(chunk);
        continue;
      }
      if (chunk.error) throw new Error(chunk.error.message || "the stream failed");
      if (chunk.model) used = chunk.model;
      const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
      if (delta && delta.content) {
        if (firstToken === null) firstToken = performance.now();
        output.append(delta.content);
      }
      if (chunk.usage) usage = chunk.usage;
    }
    showMeta(used, usage, started, firstToken);
  });
})();
