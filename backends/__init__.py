"""Ways out of the graphc IR (installed as graphc.backends)."""
