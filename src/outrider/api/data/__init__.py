"""The data surface: datasets, generation jobs, label-existing."""
