"""The built-in node types, one module per type in category folders.

They import only the public plugin API (the modules in ``flowengine.PLUGIN_API``), exactly as a
plugin's node types do, never one another, and are found through the same ``flowengine.nodes``
entry point.
"""
