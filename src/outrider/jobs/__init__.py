"""Long work (generation, training, evaluation) run by a worker, never inside a request."""
