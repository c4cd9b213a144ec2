"""common nodes."""
