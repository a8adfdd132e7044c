"""Private pydantic-graph backed runtime of the workflow layer (import nothing from here)."""
