"""The native (Pioneer-style) surface: /inference, /base-models, /models, /inferences."""
