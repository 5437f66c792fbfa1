"""Datasets: example formats, importers and versioned storage of JSONL files."""
