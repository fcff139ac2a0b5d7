"""``localtailr web``: serve the status page and the HTTP API in the foreground (no daemon needed)."""

from __future__ import annotations

import click

from .common import caller_options


@click.command("web")
@click.option("--port", default=0, show_default=True, help="Port on 127.0.0.1 (0: any free port).")
@caller_options
def web(opts, port: int) -> None:
    """Serve the home's status page on 127.0.0.1 until Ctrl-C; print its URL with the token."""
    from ..web import server  # flask: only for `localtailr web`, not every command

    srv = server.serve(opts.home, port, opts.user)
    click.echo(f"localtailr status page for {opts.home.root}: {server.url(srv, opts.home)}", err=False)
    click.echo("(Ctrl-C stops it)", err=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
