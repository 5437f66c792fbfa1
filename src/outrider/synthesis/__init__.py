"""Synthetic training data from a teacher model: prompts, constrained answers, checks, dedup, balance.

``synthesize(teacher, request, on_examples)`` is the entry point; the ``generation`` job calls it.
"""

from outrider.synthesis.engine import SynthesisRequest, SynthesisSummary, synthesize
from outrider.synthesis.teacher import Teacher

__all__ = ["SynthesisRequest", "SynthesisSummary", "Teacher", "synthesize"]
