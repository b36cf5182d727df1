"""Watcher's shared library: one module per concern (see DESIGN.md)."""
