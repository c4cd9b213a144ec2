"""The built-in node types, one module per type in category folders.

They use only the public API in :mod:`flowengine`, exactly as a plugin's node types do, and are
found through the same ``flowengine.nodes`` entry point.
"""
