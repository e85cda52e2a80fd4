"""Checkpoints: how they are named, written, found in a run dir, loaded and carried over on resume."""
