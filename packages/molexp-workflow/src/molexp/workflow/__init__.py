"""MolExp workflow layer (placeholder)."""
