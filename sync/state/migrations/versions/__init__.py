"""One module per state-store schema change, applied in ``down_revision`` order."""
