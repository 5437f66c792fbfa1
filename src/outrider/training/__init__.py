"""Training code: plain functions that the job worker (and the test fixtures) call."""
