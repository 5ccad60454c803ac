"""Adapter to CUE: the `cue` CLI, the committed exports, the estate model, generated files."""
