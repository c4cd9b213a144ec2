"""Server-side implementations of Kurento's remote classes, one module per class."""
