"""The web face: ``/api/<cmd>/<sub>`` (JSON over the service layer) and the status page.

``localtailr.web.app.create_app(home)`` builds the Flask app; the daemon serves it on
127.0.0.1, and ``localtailr web`` serves it in the foreground for a home without a daemon.
"""
