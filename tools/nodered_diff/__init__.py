"""The differential test against the real Node-RED (``python -m tools.nodered_diff --help``)."""
