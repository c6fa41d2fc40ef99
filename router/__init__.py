"""Route clinical queries to human-written protocols and answer from them."""
