"""MolExp command line (placeholder during setup)."""
