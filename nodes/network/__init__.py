"""Network nodes: HTTP endpoints and client, websockets, the host's addresses."""
