"""The Python face: the Datatailr SDK's classes, thin over :mod:`localtailr.platform`."""
