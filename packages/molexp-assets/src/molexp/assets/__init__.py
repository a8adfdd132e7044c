"""MolExp assets layer (being built)."""
