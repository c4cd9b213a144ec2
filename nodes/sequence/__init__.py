"""sequence nodes: split a message into a sequence (``msg.parts``) and join sequences back."""
