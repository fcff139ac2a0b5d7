"""Launching a run's process: the bootstrap, limits, /proc, the supervisor, fork servers."""
