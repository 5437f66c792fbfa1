/* Extraction results drawn over their text: every mention with character offsets becomes a <mark> naming its
   label and confidence; mentions given without offsets are found by their first occurrence. */
"use strict";

const Highlight = (() => {
  const SPAN_SECTIONS = ["entities", "structures", "relations"];

  function collect(result, text) {
    const spans = [];
    const visit = (node, label) => {
      if (Array.isArray(node)) {
        node.forEach((item) => visit(item, label));
      } else if (node && typeof node === "object") {
        if (typeof node.text === "string" && typeof node.start === "number" && typeof node.end === "number") {
          spans.push({ start: node.start, end: node.end, text: node.text, label, confidence: node.confidence });
          return;
        }
        if (typeof node.text === "string") {
          visit(node.text, label);
          return;
        }
        for (const [key, value] of Object.entries(node)) visit(value, label ? `${label}.${key}` : key);
      } else if (typeof node === "string" && text) {
        const at = text.indexOf(node);
        if (node && at >= 0) spans.push({ start: at, end: at + node.length, text: node, label });
      }
    };
    for (const section of SPAN_SECTIONS) {
      if (result && result[section]) visit(result[section], "");
    }
    return spans.sort((a, b) => a.start - b.start || b.end - a.end);
  }

  function classifications(result) {
    const found = [];
    for (const [task, value] of Object.entries((result && result.classifications) || {})) {
      for (const item of Array.isArray(value) ? value : [value]) {
        if (typeof item === "string") found.push({ task, label: item });
        else if (item && typeof item === "object") found.push({ task, label: item.label, confidence: item.confidence });
      }
    }
    return found;
  }

  function confidenceText(value) {
    return typeof value === "number" ? ` ${(value * 100).toFixed(0)}%` : "";
  }

  /** Fill ``target`` with ``text`` and its marked spans (overlapping spans: the first one wins). */
  function draw(target, text, spans) {
    target.replaceChildren();
    let at = 0;
    for (const span of spans) {
      if (span.start < at || span.end > text.length || span.end <= span.start) continue;
      target.append(text.slice(at, span.start));
      const tag = Outrider.el("span", { class: "tag" }, `${span.label}${confidenceText(span.confidence)}`);
      const mark = Outrider.el(
        "mark",
        { "data-label": span.label, title: `${span.label}${confidenceText(span.confidence)}` },
        text.slice(span.start, span.end),
        tag,
      );
      target.append(mark);
      at = span.end;
    }
    target.append(text.slice(at));
  }

  /** A list of every mention and classification with its confidence. */
  function list(target, spans, classes) {
    target.replaceChildren();
    for (const span of spans) {
      target.append(Outrider.el("li", {}, Outrider.el("strong", {}, span.label), `: ${span.text}${confidenceText(span.confidence)}`));
    }
    for (const c of classes) {
      target.append(Outrider.el("li", {}, Outrider.el("strong", {}, c.task), `: ${c.label}${confidenceText(c.confidence)}`));
    }
    if (!spans.length && !classes.length) target.append(Outrider.el("li", { class: "muted" }, "nothing found above the threshold"));
  }

  return { collect, classifications, draw, list };
})();
