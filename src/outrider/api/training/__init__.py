"""The training surface: fine-tuning jobs (``/felix/training-jobs``)."""
