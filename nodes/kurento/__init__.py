"""Kurento nodes: the media server connection (``kurento-server``) and ``kurento-client``."""
