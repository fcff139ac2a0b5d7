"""The service layer: the platform's operations, one module per command group.

Every operation takes a :class:`~localtailr.platform.context.Context` (the
caller: home, user, environment), checks the caller's rights, validates its
input, and changes the store in one transaction. The Python API, the CLI and
the HTTP API all call these functions; nothing else writes the store.
"""
