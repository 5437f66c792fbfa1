"""Model backends behind one small protocol (``base.py``) and the registry that resolves model ids."""
