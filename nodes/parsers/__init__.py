"""parsers nodes."""
