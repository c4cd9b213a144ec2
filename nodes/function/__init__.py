"""function nodes."""
