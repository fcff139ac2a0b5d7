"""The command line: ``localtailr <cmd> <verb>`` and the ``dt``-compatible entry point."""
