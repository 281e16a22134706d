"""Graph rewrite passes, one per file, and the ordered DEFAULT_PIPELINE."""
