"""Ways into the graphc IR (installed as graphc.frontends)."""
