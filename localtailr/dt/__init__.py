"""The ``dt`` face: the Datatailr platform's own command line over localtailr's service layer."""
