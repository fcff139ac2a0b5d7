"""Every ``LOCALTAILR_*`` variable localtailr reads, in one table, each read at call time.

``SETTINGS`` are what a user (or a test) sets to change how localtailr behaves;
``JOB_CONTRACT`` are set by localtailr itself for a job's process (beside the platform's
``DATATAILR_*`` ones) and read on the job's side. ``docs/settings.md`` shows both tables;
a test keeps it, and every ``LOCALTAILR_`` name in the package, in step with this module.
The fork server and the bootstrap of a job's process are loaded by file, without
``localtailr``, and spell the names they read themselves (``LOCALTAILR_RUN_ID``).
"""

import os

# not typing's TYPE_CHECKING, and no __future__ import: each would cost every start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


class Setting:
    """One variable: its name, the value used when it is unset or empty, and what it does.

    A plain class, not a dataclass: importing dataclasses would cost every command a few
    milliseconds (``core.home`` reads ``LOCALTAILR_HOME`` through here)."""

    __slots__ = ("name", "default", "meaning")
    name: str
    default: str
    meaning: str

    def __init__(self, name: str, default: str, meaning: str):
        self.name, self.default, self.meaning = name, default, meaning

    def text(self, environ: "Mapping[str, str] | None" = None) -> str:
        """The value now (``default`` when unset or empty)."""
        return (os.environ if environ is None else environ).get(self.name) or self.default

    def number(self, environ: "Mapping[str, str] | None" = None) -> float:
        """The value as a number of 0 or more; ValueError naming the variable otherwise."""
        text = self.text(environ)
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0 <= value < float("inf"):
            raise ValueError(f"{self.name}={text!r}: use a number of 0 or more")
        return value

    def whole(self, environ: "Mapping[str, str] | None" = None) -> int:
        """The value as a whole number of 0 or more; ValueError naming the variable otherwise."""
        text = self.text(environ)
        if not text.strip().isdigit():
            raise ValueError(f"{self.name}={text!r}: use a whole number of 0 or more")
        return int(text)

    def flag(self, environ: "Mapping[str, str] | None" = None) -> bool | None:
        """True for 1/true/yes, False for 0/false/no, None when unset (or anything else)."""
        value = self.text(environ).strip().lower()
        return True if value in ("1", "true", "yes") else False if value in ("0", "false", "no") else None


HOME = Setting("LOCALTAILR_HOME", "", "The home folder (default `~/.localtailr`; `--home` on the command line).")
USER = Setting("LOCALTAILR_USER", "root", "The user a call is made as (`--as` on the command line).")
PORT = Setting("LOCALTAILR_PORT", "0", "The daemon's web port (0: a free one; `localtailr up --port`).")
SECRET_KEY = Setting("LOCALTAILR_SECRET_KEY", "", "Fernet keys (comma-separated, newest first) used instead of `<home>/secret.key`.")
SCHEDULE_CATCHUP = Setting("LOCALTAILR_SCHEDULE_CATCHUP", "once", "Fires missed while no daemon ran: `once`, `all` or `none`.")
STOP_GRACE = Setting("LOCALTAILR_STOP_GRACE", "5", "Seconds from SIGTERM to SIGKILL when a run is stopped.")
APP_START_TIMEOUT = Setting("LOCALTAILR_APP_START_TIMEOUT", "120", "Seconds an app or service has to answer on its port.")
LOG_CAP = Setting("LOCALTAILR_LOG_CAP", str(10 * 1024 * 1024), "Bytes of a run's stdout or stderr before it is rotated.")
FORK_SERVER = Setting("LOCALTAILR_FORK_SERVER", "1", "`0` starts every run as a fresh interpreter (no fork servers).")
OFFLINE = Setting("LOCALTAILR_OFFLINE", "", "`1`: image builds never use the network; `0`: always may (default: when it answers).")
WHEELHOUSE = Setting("LOCALTAILR_WHEELHOUSE", "", "A folder of wheels image builds install from first (`make` sets the checkout's).")
INSTALLER = Setting("LOCALTAILR_INSTALLER", "uv", "What installs an image's requirements: `uv` or `pip`.")
GC_EVERY = Setting("LOCALTAILR_GC_EVERY", "600", "Seconds between the daemon's collections of unused blob contents.")
GC_GRACE = Setting("LOCALTAILR_GC_GRACE", "3600", "Seconds a temporary blob file is left alone before a collection may remove it.")
STRICT_PYTHON = Setting("LOCALTAILR_STRICT_PYTHON", "", "`1`: an image whose Python version is missing fails instead of using this one.")

SETTINGS = (HOME, USER, PORT, SECRET_KEY, SCHEDULE_CATCHUP, STOP_GRACE, APP_START_TIMEOUT, LOG_CAP,
            FORK_SERVER, OFFLINE, WHEELHOUSE, INSTALLER, STRICT_PYTHON, GC_EVERY, GC_GRACE)

RUN_ID = Setting("LOCALTAILR_RUN_ID", "", "The run a job's process is (also marks its processes).")
PARAMS = Setting("LOCALTAILR_PARAMS", "", "The run's parameters as a JSON object (`localtailr.params`).")
PARAM_PREFIX = "LOCALTAILR_PARAM_"  # + KEY upper-cased: each parameter on its own
IMPORTING_JOB_CODE = Setting("LOCALTAILR_IMPORTING_JOB_CODE", "", "`1` while a job's process imports its own code (a deploy there deploys nothing).")

USER_UMASK = Setting("LOCALTAILR_USER_UMASK", "", "The umask of the command that started localtailr (octal): job processes run with it.")

JOB_CONTRACT = (HOME, USER, RUN_ID, PARAMS, IMPORTING_JOB_CODE, USER_UMASK)
