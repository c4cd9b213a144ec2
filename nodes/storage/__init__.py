"""Storage nodes: databases."""
