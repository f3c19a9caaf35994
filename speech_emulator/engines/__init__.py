"""Recognition engines of the local Speech service: `scripted` (deterministic) and `sphinx`."""
