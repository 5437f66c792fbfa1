"""Serving never imports training code: what both need (GLiNER2 adapter folders, the label head) lives in
``backends/``, so the serving path loads no trainer and a change to a trainer cannot break serving. Counted
over every import, directly or through other modules (the graph of ``tests/test_imports.py``)."""

from tests.test_imports import import_graph

SERVING = [
    "outrider.services.catalog",
    "outrider.services.extraction",
    "outrider.services.generation",
    "outrider.services.routing",
    "outrider.backends.registry",
    "outrider.backends.builtin",
    "outrider.backends.encoder_gliner",
    "outrider.backends.decoder_adapters",
]


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for target in graph[stack.pop()] - seen:
            seen.add(target)
            stack.append(target)
    return seen


def test_serving_modules_import_nothing_from_training():
    graph = import_graph()
    found = {
        module: sorted(m for m in reachable(graph, module) if m.startswith(("outrider.training", "outrider.jobs")))
        for module in SERVING
    }
    assert not any(found.values()), {module: hits for module, hits in found.items() if hits}
