"""MolExp workspace layer (being built)."""
