"""``localtailr up | down | status``: the daemon on the command line."""

from __future__ import annotations

import os
import time

import click

from ..dt import server as dt_server
from ..runtime import client
from ..web import security
from ..web import server as web_server
from .common import caller_options


def _status_text(data: dict) -> str:
    lines = []
    if data["running"]:
        lines.append(f"daemon    running, pid {data['pid']}, up {_duration(data['uptime'])}")
        if data.get("url"):
            lines.append(f"web       {data.get('page') or data['url']}")
        lines.append(f"log       {data.get('log')}")
    else:
        lines.append("daemon    not running")
    lines.append(f"home      {data['home']}")
    lines.append(f"cpu limit {data['cpu_limiting']}")
    lines.append(f"processes {data['containment']}")
    runs = ", ".join(f"{state} {n}" for state, n in data["runs"].items()) or "none"
    lines.append(f"runs      {runs}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _announce(home, info: dict) -> tuple[dict, str]:
    """The daemon's info with ``page``, the status page's URL with its token (the page
    answers 401 without it), and the line that says so."""
    text = client.describe(info)
    if not info.get("url"):
        return info, text
    page = _page(home, info["url"])
    return {**info, "page": page}, f"{text}\nstatus page: {page}"


def _page(home, url: str) -> str:
    """The status page's URL with its token: the page answers 401 without it."""
    return f"{url.rstrip('/')}/?token={security.token(home)}"


@click.command()
@click.option("-d", "--detach", is_flag=True, help="Run in the background (log in <home>/daemon.log).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port of the status page (default: LOCALTAILR_PORT, else the port this home"
                   " used last, else a free one).")
@caller_options
def up(opts, detach, port):
    """Start the daemon for the home (in the foreground unless -d)."""
    home = opts.home.ensure()
    info = client.daemon_info(home)
    if info is not None:
        data, text = _announce(home, info)
        opts.emit(data, f"already running: {text}")
        return
    if detach:
        if port is not None:
            os.environ["LOCALTAILR_PORT"] = str(port)
        info = client.ensure_daemon(home, quiet=True)
        opts.emit(*_announce(home, info))
        return

    def ready(info: dict) -> None:  # the log line (stderr) never carries the token
        page = _announce(home, info)[0].get("page")
        if page:
            click.echo(f"status page: {page}")

    try:
        client.serve(home, port=port, serve_web=web_server.serve, on_ready=ready,
                     serve_dt=dt_server.serve)
    except client.AlreadyRunning as exc:
        click.echo(str(exc))


@click.command()
@click.option("--timeout", type=float, default=None, help="Seconds to wait for the daemon to stop.")
@caller_options
def down(opts, timeout):
    """Stop the daemon and every run it supervises; nothing is left running."""
    started = time.monotonic()
    was = client.stop_daemon(opts.home, timeout=timeout)
    data = {"stopped": was, "seconds": round(time.monotonic() - started, 2)}
    opts.emit(data, "daemon stopped" if was else "daemon was not running (leftover runs cleaned up)")


@click.command()
@caller_options
def status(opts):
    """The daemon (pid, uptime, web address, CPU limiting and process containment in
    force) and the runs by state."""
    data = client.daemon_status(opts.home)
    if data["running"] and data.get("url"):
        data["page"] = _page(opts.home, data["url"])
    opts.emit(data, _status_text)
