"""Evaluating served models on a dataset version: the schema and gold records a version gives, the figures
(``training/metrics.py``'s, shared with the trainers) and paired comparisons between models."""
