"""The daemon: one a home; starts pending runs, supervises them, restarts services.

All its state is in the store. ``<home>/daemon.lock`` holds the one-daemon-a-home lock
(``fcntl.flock``); ``<home>/daemon.json`` says where it is::

    {"pid", "pid_create_time", "started_at", "home", "socket", "log", "url", "port",
     "cpu_limiting", "version"}

Its loop waits on the wake-up socket (``wakeup.notify``), on a pidfd of every child it
spawned and on the socket of every fork server (``forkservers``: they fork batch and task
runs and say when one ended), at most a second, or until the next schedule fire
(``scheduler.seconds_to_next``); then it ends the runs whose process ended, starts pending
runs, acts on stop requests, samples every tree (memory limit, CPU throttle, metrics) and
calls the hooks: ``schedule.scheduler.tick(home)`` (at each fire time, and at least once a
second) and ``workflows.engine.advance_all(home)`` (at least once a second, and when a run
ended). At most once a second it
records its heartbeats in the ``tags`` table (one statement): ``daemon.heartbeat``, and
``scheduler.heartbeat`` / ``supervisor.heartbeat`` as of the last scheduler tick and
supervision pass (epoch seconds as text). Given a way to serve the web app (``localtailr.daemon_main``
gives ``web.server.serve``) it serves that app on 127.0.0.1 (``--port``, ``LOCALTAILR_PORT``,
else the port the home used last (``<home>/web.port``), else a free one) in a thread.

Killed with SIGKILL and started again, it adopts the runs whose process is still the same
(pid and create time), marks the others ``lost``, and restarts the services, apps and
add-ins whose ``desired_state`` is ``running``. SIGTERM (``localtailr down``) stops every
run's process group (SIGTERM, then SIGKILL after a grace period) and leaves nothing behind.
"""

from __future__ import annotations

import errno
import fcntl
import heapq
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from ... import store
from ...core import settings
from ...core.home import Home, private_umask
from ...core.runs import ACTIVE, LONG_RUNNING
from ...platform import blob_gc
from ...platform.context import context
from ...store import runs as run_state
from ...store import wakeup
from ..process import supervisor
from ..process.forkserver_pool import ForkServers
from ..process.supervisor import LaunchError, Supervised
from ..schedule import scheduler
from ..workflows import engine as workflow_runner

IDLE_WAIT = 1.0  # longest sleep of the loop
BEAT_EVERY = 1.0  # seconds between heartbeat writes
COALESCE = 0.05  # runs due to be sampled this soon are sampled now, together
STABLE_AFTER = 60.0  # a long-running process up this long resets its backoff
BACKOFF_CAP = 30.0
CRASH_LOOP_AFTER = 3  # quick restarts in a row before a job is shown crash-looping
SHUTDOWN_REASON = "killed: the daemon was stopped (localtailr down)"
LEFTOVER_ROUNDS = 5  # scans for a run's leftovers, each killing what it found
LAUNCH_ATTEMPTS = 3  # daemon restarts during one run's launch before the run is failed
REQUEUED = "re-queued: the daemon restarted during the build"


def log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    sys.stderr.write(f"{stamp} {message}\n")
    sys.stderr.flush()


# -- discovery -------------------------------------------------------------------------


def restart_delay(restarts: int, uptime: float) -> tuple[int, float]:
    """The quick-restart count and the delay (s) of the next restart of a long-running job
    whose process, itself restart number ``restarts``, ended after ``uptime`` seconds: at
    once for the first, then 1, 2, 4 ... s up to BACKOFF_CAP; up STABLE_AFTER s resets it."""
    quick = 0 if uptime >= STABLE_AFTER else restarts + 1
    return quick, 0.0 if quick <= 1 else min(BACKOFF_CAP, 2.0 ** (quick - 2))


def lock_path(home: Home) -> Path:
    return home.root / "daemon.lock"


def info_path(home: Home) -> Path:
    return home.root / "daemon.json"


def log_path(home: Home) -> Path:
    return home.root / "daemon.log"


def lock_held(home: Home) -> bool:
    """Whether a daemon holds the home's lock now."""
    path = lock_path(home)
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def running_info(home: Home) -> dict | None:
    """The running daemon's ``daemon.json`` (None if no daemon runs for ``home``)."""
    if not lock_held(home):
        return None
    try:
        data = json.loads(info_path(home).read_text())
    except (OSError, ValueError):
        return None
    if not supervisor.same_process(data.get("pid"), data.get("pid_create_time")):
        return None
    return data


def _describe(info: dict) -> str:
    where = f" at {info['url']}" if info.get("url") else ""
    return f"localtailr daemon running (pid {info['pid']}){where}; home {info['home']}, log {info['log']}"


PORT_FILE = "web.port"


def remembered_port(home: Home) -> int:
    """The port the home's page last served on (0: none yet), so its address stays put."""
    try:
        port = int((home.root / PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        return 0
    return port if 0 < port < 65536 else 0


def remember_port(home: Home, port: int) -> None:
    tmp = home.root / f"{PORT_FILE}.tmp"
    tmp.write_text(f"{port}\n")
    os.replace(tmp, home.root / PORT_FILE)


def ensure_running(home: Home | None = None, quiet: bool = False, timeout: float = 30.0) -> dict:
    """The running daemon's info; start it detached first if none runs (one line on stderr
    says where it is). Raises RuntimeError if it does not come up."""
    home = (home or Home.current()).ensure()
    info = running_info(home)
    if info is not None:
        return info
    env = {**os.environ, "LOCALTAILR_HOME": str(home.root)}
    with os.fdopen(home.open_private(log_path(home)), "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "localtailr.daemon_main", str(home.root)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, start_new_session=True,
            cwd=str(home.root), close_fds=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = running_info(home)
        if info is not None:
            if not quiet:
                sys.stderr.write(_describe(info) + "\n")
            _reap_later(proc)
            return info
        if proc.poll() is not None and not lock_held(home):
            tail = supervisor.log_tail(log_path(home), 5)
            raise RuntimeError(f"the localtailr daemon did not start: {' | '.join(tail)}")
        time.sleep(0.02)
    raise RuntimeError(f"the localtailr daemon did not start within {timeout:.0f} s; "
                       f"see {log_path(home)}")


def _reap_later(proc: subprocess.Popen) -> None:
    # The detached daemon is our child until it exits: reap it so no zombie stays.
    threading.Thread(target=proc.wait, daemon=True).start()


def stop(home: Home | None = None, grace: float | None = None, timeout: float | None = None) -> bool:
    """Stop the home's daemon (``localtailr down``): its runs are stopped (SIGTERM, SIGKILL
    after the daemon's grace period; ``grace`` is how long to wait for that). True if a daemon was running. Whatever is left (a daemon that does
    not answer, runs of a daemon killed earlier) is killed here."""
    home = home or Home.current()
    grace = settings.STOP_GRACE.number() if grace is None else grace
    info = running_info(home)
    was_running = info is not None
    if info is not None:
        try:
            os.kill(info["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + (timeout if timeout is not None else grace + 15)
        while lock_held(home) and time.monotonic() < deadline:
            time.sleep(0.02)
        if lock_held(home):
            try:
                os.kill(info["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
            while lock_held(home) and time.monotonic() < deadline + 5:
                time.sleep(0.02)
    if home.db_path.exists():
        _kill_orphans(home, SHUTDOWN_REASON)
    sweep(home)
    return was_running


def _kill_orphans(home: Home, reason: str) -> None:
    """Kill the process groups of active runs no daemon supervises (after a SIGKILLed
    daemon) and mark them killed."""
    conn = store.connection(home)
    rows = conn.execute(
        "SELECT run_id, pid, pid_create_time FROM runs WHERE state IN ('starting', 'running') "
        "AND pid IS NOT NULL").fetchall()
    for row in rows:
        if supervisor.same_process(row["pid"], row["pid_create_time"]):
            for sig in (signal.SIGKILL,):
                try:
                    os.killpg(row["pid"], sig)
                except (ProcessLookupError, PermissionError):
                    pass
            run_state.transition(home, row["run_id"], "killed", reason,
                                 only_from=("starting", "running"))


def sweep(home: Home, exclude: set[int] | None = None) -> list[int]:
    """Kill every process started for a run of ``home`` that is still alive (found by its
    ``LOCALTAILR_HOME`` and ``LOCALTAILR_RUN_ID`` variables); return their pids."""
    me = os.getpid()
    exclude = exclude or set()
    killed = []
    root = str(home.root)
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me or proc.pid in exclude:
            continue
        try:
            env = proc.environ()
        except (psutil.Error, OSError):
            continue
        if env.get("LOCALTAILR_HOME") == root and env.get("LOCALTAILR_RUN_ID"):
            try:
                proc.kill()
                killed.append(proc.pid)
            except psutil.Error:
                pass
    return killed


def status(home: Home | None = None) -> dict:
    """What ``localtailr status`` shows: the daemon (if running) and the runs by state."""
    home = home or Home.current()
    info = running_info(home)
    conn = store.connection(home)
    by_state = {r[0]: r[1] for r in conn.execute(
        "SELECT state, count(*) FROM runs GROUP BY state ORDER BY state")}
    out: dict[str, Any] = {"running": info is not None, "home": str(home.root)}
    if info is not None:
        out.update(pid=info["pid"], uptime=round(time.time() - info["started_at"], 1),
                   url=info.get("url"), log=info.get("log"),
                   cpu_limiting=info.get("cpu_limiting"))
    else:
        out["cpu_limiting"] = supervisor.cpu_limiting()
    out["containment"] = supervisor.containment()
    out["runs"] = by_state
    return out


# -- the daemon ------------------------------------------------------------------------


def launch_reason(exc: BaseException) -> str:
    """A failed launch's reason: a LaunchError's message, else the error itself."""
    if isinstance(exc, LaunchError):
        return str(exc)
    return f"failed to launch: {type(exc).__name__}: {exc}"


class AlreadyRunning(RuntimeError):
    def __init__(self, info: dict | None):
        self.info = info or {}
        where = _describe(info) if info else "another daemon holds the lock"
        super().__init__(f"already running: {where}")


class Daemon:
    """The loop. ``Daemon(home).serve()`` runs until SIGTERM/SIGINT. With ``serve_web``
    (``web.server.serve``) and ``serve_dt`` (``dt.server.serve``), given by the process that
    composes the faces with the runtime, it serves the web app on ``port`` and the dt socket."""

    def __init__(self, home: Home, port: int | None = None,
                 serve_web: Callable[[Home, int], Any] | None = None,
                 on_ready: Callable[[dict], None] | None = None,
                 serve_dt: Callable[[Home], Any] | None = None):
        self.home = home.ensure()
        self.port = port
        self.serve_web = serve_web
        self.serve_dt = serve_dt
        self.on_ready = on_ready  # called with daemon.json's content once it serves
        self.runs: dict[int, Supervised] = {}
        self.building: set[int] = set()
        self.built: queue.Queue = queue.Queue()
        self.timers: list[float] = []
        self.stopping = False
        self.lock_fd: int | None = None
        self.listener: wakeup.Listener | None = None
        self.web = None
        self.dt = None  # the dt socket (dt/server.py)
        self.url: str | None = None
        self.next_periodic = 0.0
        self.next_services = 0.0
        self.next_tick = 0.0  # monotonic time of the next scheduler tick
        self.beats: dict[str, float] = {}
        self.next_beat = 0.0
        self.forkservers = ForkServers(
            str(self.home.root), log_path(self.home),
            enabled=settings.FORK_SERVER.text() != "0")
        self._procs: dict | None = None  # a scan of /proc shared by one step
        self.reloader = None  # watchdog-based, started with the first app in dev

    # -- lifecycle ------------------------------------------------------------------

    def acquire(self) -> None:
        fd = os.open(lock_path(self.home), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise AlreadyRunning(running_info(self.home)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.lock_fd = fd

    def write_info(self) -> dict:
        me = psutil.Process()
        info = {
            "pid": me.pid,
            "pid_create_time": me.create_time(),
            "started_at": time.time(),
            "home": str(self.home.root),
            "socket": self.listener.path if self.listener else None,
            "log": str(log_path(self.home)),
            "url": self.url,
            "port": self.web.server_port if self.web else None,
            "cpu_limiting": supervisor.cpu_limiting(),
            "version": 1,
        }
        self.home.write_private(info_path(self.home), json.dumps(info, indent=2).encode())
        return info

    def serve(self) -> None:
        private_umask()  # what the daemon and its runs write in the home is 0600/0700
        self.acquire()
        try:
            self.listener = wakeup.Listener(self.home)
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
            self.recover()
            self.start_web()
            threading.Thread(target=self.collect_garbage, name="blob-gc", daemon=True).start()
            self.start_dt()
            info = self.write_info()
            log(_describe(info) + f"; cpu limiting: {info['cpu_limiting']}")
            if self.on_ready is not None:
                self.on_ready(info)
            self.loop()
        finally:
            self.shutdown()

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True
        wakeup.notify(self.home)

    def start_web(self) -> None:
        if self.serve_web is None:
            return
        port = self.port if self.port is not None else settings.PORT.whole()
        port = port or remembered_port(self.home)
        try:
            try:
                server = self.serve_web(self.home, port)
            except OSError as exc:
                if not port:
                    raise
                log(f"port {port} is taken ({exc}); serving the web app on a free port")
                server = self.serve_web(self.home, 0)
        except Exception as exc:  # noqa: BLE001 - the daemon runs without its page
            log(f"the web app did not start: {type(exc).__name__}: {exc}")
            return
        self.web = server
        self.url = f"http://127.0.0.1:{server.server_port}/"
        remember_port(self.home, server.server_port)
        threading.Thread(target=server.serve_forever, name="web", daemon=True).start()

    def start_dt(self) -> None:
        """Answer ``dt`` calls on ``<home>/dt.sock`` (the dt face's socket, as the web app
        is the web face's, given as ``serve_dt``); ``dt`` runs calls itself when it is not there."""
        if self.serve_dt is None:
            return
        try:
            self.dt = self.serve_dt(self.home)
        except OSError as exc:
            log(f"the dt socket did not start: {exc}")

    def shutdown(self) -> None:
        try:
            if self.runs:
                self.stop_all(SHUTDOWN_REASON)
            self.forkservers.close_all()
            if self.reloader is not None:
                self.reloader.close()
            if self.home.db_path.exists():
                sweep(self.home)
        finally:
            if self.web is not None:
                self.web.shutdown()
            if self.dt is not None:
                self.dt.close()
            if self.listener is not None:
                self.listener.close()
            try:
                info_path(self.home).unlink()
            except FileNotFoundError:
                pass
            if self.lock_fd is not None:
                os.close(self.lock_fd)
                self.lock_fd = None
            log("daemon stopped")

    def stop_all(self, reason: str) -> None:
        for sv in self.runs.values():
            sv.request_stop(reason, settings.STOP_GRACE.number())
        deadline = time.monotonic() + settings.STOP_GRACE.number()
        while self.runs and time.monotonic() < deadline:
            self.forkservers.pump()
            self.reap(restart=False)
            time.sleep(0.02)
        for sv in list(self.runs.values()):
            sv.kill_tree()
        end = time.monotonic() + 5
        while self.runs and time.monotonic() < end:
            self.forkservers.pump()
            self.reap(restart=False)
            time.sleep(0.02)

    # -- recovery -------------------------------------------------------------------

    def recover(self) -> None:
        """Adopt live runs, mark the dead ``lost``, re-queue interrupted builds."""
        conn = store.connection(self.home)
        now = time.time()
        rows = conn.execute(
            "SELECT r.run_id, r.state, r.pid, r.pid_create_time, r.port, r.url, r.version, "
            "r.restarts, r.started_at, r.task_name, j.job_id, j.type, v.definition FROM runs r "
            "JOIN jobs j ON j.job_id = r.job_id "
            "LEFT JOIN job_versions v ON v.job_id = r.job_id AND v.version = r.version "
            "WHERE r.state IN ('building', 'starting', 'running')").fetchall()
        for row in rows:
            if row["state"] == "building" or (row["state"] == "starting" and not row["pid"]):
                self.requeue(row["run_id"])
                continue
            if row["type"] == "workflow" and row["pid"] is None:
                continue  # a workflow's parent run: the workflow runner's
            if supervisor.same_process(row["pid"], row["pid_create_time"]):
                definition = json.loads(row["definition"] or "{}")
                memory, memory_text, cpu = supervisor.limits(definition, row["task_name"])
                sv = Supervised(self.home, row["run_id"], row["job_id"], row["type"], row["pid"],
                                row["pid_create_time"], memory, memory_text, cpu,
                                port=row["port"], url=row["url"], adopted=True,
                                state=row["state"])
                sv.started = time.monotonic() - max(0.0, now - (row["started_at"] or now))
                sv.signal(signal.SIGCONT)  # it may have been paused by the throttle
                self.runs[sv.run_id] = sv
                run_state.event(self.home, sv.run_id, "adopted", f"pid {sv.pid}")
                log(f"adopted run {sv.run_id} (pid {sv.pid})")
            else:
                run_state.transition(
                    self.home, row["run_id"], "lost",
                    f"lost: process gone while the daemon was down (noticed {run_state.iso(now)})")
                log(f"run {row['run_id']} lost")
        self.ensure_long_running(force=True)

    def requeue(self, run_id: int) -> None:
        """A run this daemon's predecessor was launching: pending again, unless launching
        it has already been cut short LAUNCH_ATTEMPTS times (it may be what killed the
        daemon): then failed, so that no restart retries it for ever."""
        tries = store.connection(self.home).execute(
            "SELECT count(*) FROM run_events WHERE run_id = ? AND detail = ?",
            (run_id, REQUEUED)).fetchone()[0]
        if tries >= LAUNCH_ATTEMPTS:
            self.launch_failed(run_id, f"failed to launch: the daemon restarted {tries + 1} "
                                       "times while launching this run (see daemon.log)")
        else:
            run_state.transition(self.home, run_id, "pending", REQUEUED)

    # -- the loop -------------------------------------------------------------------

    def loop(self) -> None:
        while not self.stopping:
            now = time.monotonic()
            wake = min(now + IDLE_WAIT, self.next_tick)
            for sv in self.runs.values():
                wake = min(wake, sv.next_wake(now))
            if self.timers:
                wake = min(wake, self.timers[0])
            fds = [self.listener.fileno(), *self.forkservers.fds()]
            fds += [fd for sv in self.runs.values() if (fd := sv.watch_fd) is not None]
            try:
                ready, _, _ = select.select(fds, [], [], max(0.0, wake - time.monotonic()))
            except InterruptedError:
                ready = []
            woken = self.listener.fileno() in ready and self.listener.drain() > 0
            if self.stopping:
                break
            ready = set(ready)
            try:
                self.forkservers.pump(ready)
                self.step(woken, ready)
            except Exception as exc:  # noqa: BLE001 - the loop goes on whatever one step met
                log(f"daemon step failed: {type(exc).__name__}: {exc}")
                time.sleep(0.1)  # a fault that repeats must not spin

    def step(self, woken: bool, ready: set[int] | None = None) -> None:
        self._procs = None
        now = time.monotonic()
        while self.timers and self.timers[0] <= now:
            heapq.heappop(self.timers)
            woken = True
        periodic = now >= self.next_periodic
        ended = self.reap(restart=True, ready=None if periodic else ready)
        self.finish_builds()
        if now >= self.next_tick:
            self.tick_scheduler()
        if periodic:
            self.next_periodic = now + IDLE_WAIT
            self._call(workflow_runner.advance_all, self.home)
            self._call(self.hot_reload)
        if woken or periodic or ended:
            if ended or woken:  # woken: perhaps a new workflow run, whose first tasks start now
                self._call(workflow_runner.advance_all, self.home)
            self.handle_stop_requests()
            self.start_pending()
        if now >= self.next_services:
            self.ensure_long_running()
        self.supervise(time.monotonic())
        self.beats["supervisor"] = time.time()
        if time.monotonic() >= self.next_beat:
            self.heartbeat()

    def tick_scheduler(self) -> None:
        """Fire what is due (by localtailr's clock, which tests may move) and plan the next
        tick: at the next fire time, at most a second away."""
        wait = IDLE_WAIT
        if self._call(scheduler.tick, self.home):
            self.beats["scheduler"] = time.time()
            try:
                # a little after the fire time; never a busy loop on a stuck row
                wait = max(0.002, scheduler.seconds_to_next(self.home, IDLE_WAIT) + 0.001)
            except Exception as exc:  # noqa: BLE001 - tick again in a second
                log(f"scheduler.seconds_to_next failed: {type(exc).__name__}: {exc}")
        self.next_tick = time.monotonic() + wait

    def heartbeat(self) -> None:
        """Write the heartbeats (one UPSERT): ``daemon.heartbeat`` now, the scheduler's and
        the supervisor's as of their last pass."""
        self.next_beat = time.monotonic() + BEAT_EVERY
        self.beats["daemon"] = time.time()
        rows = [(f"{part}.heartbeat", f"{at:.3f}") for part, at in self.beats.items()]
        try:
            store.connection(self.home).execute(
                "INSERT INTO tags (name, value) VALUES "
                + ", ".join("(?, ?)" for _ in rows)
                + " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [x for r in rows for x in r])
        except Exception as exc:  # noqa: BLE001 - a busy store must not stop the daemon
            log(f"heartbeat not written: {type(exc).__name__}: {exc}")

    def hot_reload(self) -> None:
        """Restart an app in dev whose entrypoint's source file changed (as flask's and
        streamlit's own dev servers do); other jobs and environments are left alone."""
        apps = [sv.run_id for sv in self.runs.values() if sv.job_type == "app"]
        if not apps and self.reloader is None:
            return
        conn = store.connection(self.home)
        watched: dict[int, str] = {}
        names: dict[int, tuple[str, str]] = {}
        started: dict[int, float] = {}
        marks = ",".join("?" * len(apps))
        for row in conn.execute(
                f"SELECT r.run_id, r.job_id, r.version, r.started_at, j.name, j.environment FROM runs r"
                f" JOIN jobs j USING (job_id) WHERE r.run_id IN ({marks})", apps):
            d = supervisor.definition_of(self.home, row["job_id"], row["version"]) or {}
            path = (d.get("entrypoint") or {}).get("file")
            if row["environment"] == "dev" and path:
                watched[row["job_id"]] = path
                names[row["job_id"]] = (row["name"], row["environment"])
                if row["started_at"]:
                    started[row["job_id"]] = row["started_at"]
        if self.reloader is None:
            from ..process.reloader import Reloader

            self.reloader = Reloader()
        self.reloader.sync(watched, started)
        for job_id in self.reloader.changed():
            if job_id not in names:
                continue
            from ...platform import jobs

            name, environment = names[job_id]
            run = jobs.restart(context(self.home, 0, environment), name)
            run_state.event(self.home, run["run_id"], "reloaded",
                            f"source changed: {watched[job_id]}")
            log(f"app {name} reloaded: {watched[job_id]} changed")

    def collect_garbage(self) -> None:
        """Every LOCALTAILR_GC_EVERY seconds, in its own thread (a large store takes a while to list):
        apply blob retention and free unreferenced objects and stale temporary files."""
        while not self.stopping:
            try:
                report = blob_gc.collect(context(self.home, 0), grace=settings.GC_GRACE.number())
                if report["bytes_freed"] or report["versions_dropped"]:
                    log("blob gc: " + ", ".join(f"{k} {v}" for k, v in report.items()))
            except Exception as exc:  # noqa: BLE001 - try again next time
                log(f"blob gc failed: {type(exc).__name__}: {exc}")
            for _ in range(max(1, int(settings.GC_EVERY.number() * 10))):
                if self.stopping:
                    return
                time.sleep(0.1)

    def _call(self, fn, *args) -> bool:
        try:
            fn(*args)
            return True
        except Exception as exc:  # noqa: BLE001 - a hook's failure must not stop the daemon
            log(f"{fn.__module__}.{fn.__name__} failed: {type(exc).__name__}: {exc}")
            return False

    # -- starting -------------------------------------------------------------------

    def start_pending(self) -> None:
        conn = store.connection(self.home)
        now = time.time()
        rows = conn.execute(
            "SELECT r.run_id, r.scheduled_for, r.trigger, r.task_name, r.job_id, j.type "
            "FROM runs r JOIN jobs j ON j.job_id = r.job_id WHERE r.state = 'pending' "
            "ORDER BY r.run_id").fetchall()
        if not rows:
            return
        stops = self._stop_requests([r["run_id"] for r in rows])
        for row in rows:
            run_id = row["run_id"]
            if run_id in self.building or run_id in self.runs:
                continue
            if row["type"] == "workflow" and row["task_name"] is None:
                continue  # the workflow runner moves parent runs
            if run_id in stops:
                run_state.transition(self.home, run_id, "killed", stops[run_id],
                                     only_from=("pending",))
                continue
            if row["trigger"] == "restart" and row["scheduled_for"] and row["scheduled_for"] > now:
                heapq.heappush(self.timers, time.monotonic() + row["scheduled_for"] - now)
                continue
            if row["type"] in LONG_RUNNING:
                for other in list(self.runs.values()):
                    if other.job_id == row["job_id"] and other.stopping is None:
                        other.request_stop(f"replaced by run {run_id}", settings.STOP_GRACE.number())
            self.start(run_id)

    def start(self, run_id: int) -> None:
        if not run_state.transition(self.home, run_id, "building", only_from=("pending",)):
            return
        try:
            self._start(run_id)
        except Exception as exc:  # noqa: BLE001 - whatever it is fails this run only
            self.building.discard(run_id)
            self.launch_failed(run_id, launch_reason(exc))

    def _start(self, run_id: int) -> None:
        info, spec = supervisor.prepare(self.home, run_id)
        if supervisor.image_ready(self.home, spec):
            self.launch(info, spec)
            return
        self.home.run_dir(run_id).mkdir(mode=0o700, parents=True, exist_ok=True)
        self.building.add(run_id)

        def build() -> None:
            try:
                image = supervisor.build_image(self.home, spec, self.home.run_dir(run_id) / "stderr")
                self.built.put((info, image, None))
            except Exception as exc:  # noqa: BLE001 - the run's reason
                self.built.put((info, None, launch_reason(exc)))
            wakeup.notify(self.home)

        threading.Thread(target=build, name=f"build-{run_id}", daemon=True).start()

    def finish_builds(self) -> None:
        while True:
            try:
                info, image, error = self.built.get_nowait()
            except queue.Empty:
                return
            self.building.discard(info.run_id)
            if error is not None:
                self.launch_failed(info.run_id, error)
            elif self._stop_requests([info.run_id]):
                reason = self._stop_requests([info.run_id])[info.run_id]
                run_state.transition(self.home, info.run_id, "killed", reason)
            else:
                self.launch(info, image)

    def launch(self, info, spec_or_image) -> None:
        try:
            image = spec_or_image
            if not hasattr(image, "python"):
                image = supervisor.build_image(self.home, spec_or_image)
            sv = supervisor.launch(self.home, info, image, self.forkservers)
        except Exception as exc:  # noqa: BLE001 - a NUL in a parameter, a full disk ...
            self.launch_failed(info.run_id, launch_reason(exc))
            return
        sv.next_sample = time.monotonic()
        self.runs[sv.run_id] = sv
        log(f"run {sv.run_id} started (pid {sv.pid}, {info.job_type} {info.job_name})")

    def launch_failed(self, run_id: int, reason: str) -> None:
        run_state.transition(self.home, run_id, "failed", reason[:2000])
        log(f"run {run_id} failed to start: {reason}")
        self.maybe_restart(run_id, uptime=0.0)

    # -- ending ---------------------------------------------------------------------

    def reap(self, restart: bool, ready: set[int] | None = None) -> bool:
        """End the runs whose process ended (only those whose pidfd is in ``ready``, and
        those without one, when ``ready`` is given)."""
        ended = False
        for sv in list(self.runs.values()):
            if ready is not None and sv.watch_fd is not None and sv.watch_fd not in ready:
                continue
            code = sv.poll()
            if code is None:
                continue
            ended = True
            try:
                self.finish(sv, code, restart)
            except Exception as exc:  # noqa: BLE001 - fails this run, not the daemon
                self.abandon(sv, f"ending the run failed: {type(exc).__name__}: {exc}")
        return ended

    def abandon(self, sv: Supervised, reason: str) -> None:
        """Something went wrong supervising ``sv``: kill its tree, record it failed."""
        log(f"run {sv.run_id}: {reason}")
        self.runs.pop(sv.run_id, None)
        try:
            sv.kill_tree()
            sv.close()
            run_state.transition(self.home, sv.run_id, "failed", reason[:2000],
                                 only_from=ACTIVE)
        except Exception as exc:  # noqa: BLE001 - the next start marks it lost
            log(f"run {sv.run_id} not recorded failed: {type(exc).__name__}: {exc}")

    def finish(self, sv: Supervised, code: int, restart: bool) -> None:
        del self.runs[sv.run_id]
        leftovers = self.end_leftovers(sv)
        sv.wait_pump()  # its last lines written before the reason is read from them
        sv.close()
        run_dir = sv.run_dir
        if sv.killed_reason:
            state, reason = "killed", sv.killed_reason
        elif sv.stopping is not None:
            state, reason = "killed", sv.stopping[0]
        elif code == 0:
            state, reason = "succeeded", "exit code 0"
        else:
            state, reason = "failed", supervisor.failure_reason(run_dir, code)
            if sv.state == "starting" and sv.port:
                reason = f"exited before answering on port {sv.port}: {reason}"
        if leftovers:
            reason += f"; {len(leftovers)} leftover process(es) killed"
        run_state.transition(
            self.home, sv.run_id, state, reason,
            exit_code=None if code == -999 else code,
            peak_rss=sv.peak_rss or None, peak_cpu=round(sv.peak_cpu, 3) if sv.peak_cpu else None)
        if sv.cgroup is not None:
            try:
                sv.cgroup.rmdir()
            except OSError:
                pass
        log(f"run {sv.run_id} {state}: {reason}")
        if restart and sv.job_type in LONG_RUNNING:
            if sv.stopping is None:
                self.maybe_restart(sv.run_id, uptime=time.monotonic() - sv.started, code=code)
            else:  # stopped for a new version or a restart: up again unless stopped for good
                self.maybe_restart(sv.run_id, uptime=STABLE_AFTER, code=code, stopped=True)

    def end_leftovers(self, sv: Supervised) -> list[int]:
        """Kill what is left of a run whose main process ended; again on a fresh scan
        while a leftover was forking as it was killed (a few rounds at most)."""
        found = sv.leftovers(self.procs())
        killed = set(found)
        for _ in range(LEFTOVER_ROUNDS):
            if not found:
                break
            sv.kill_tree()
            found = [p for p in sv.leftovers() if p not in killed]
            killed.update(found)
        return sorted(killed)

    def maybe_restart(self, run_id: int, uptime: float, code: int | None = None,
                      stopped: bool = False) -> None:
        """A long-running job's process ended: queue the next one (of the job's current
        version, with backoff) if the job should still be running and nothing newer is."""
        if self.stopping:
            return
        conn = store.connection(self.home)
        row = conn.execute(
            "SELECT r.*, j.type, j.desired_state, j.current_version FROM runs r "
            "JOIN jobs j ON j.job_id = r.job_id WHERE r.run_id = ?", (run_id,)).fetchone()
        if row is None or row["type"] not in LONG_RUNNING or row["desired_state"] != "running":
            return
        if self._stop_requests([run_id]) and not stopped:
            return
        quick, delay = restart_delay(row["restarts"], uptime)
        now = time.time()
        with store.transaction(conn):
            newer = conn.execute(
                "SELECT 1 FROM runs WHERE job_id = ? AND run_id > ? AND state IN "
                "('pending', 'building', 'starting', 'running')", (row["job_id"], run_id)).fetchone()
            if newer:
                return
            new_id = run_state.create(
                conn, job_id=row["job_id"], version=row["current_version"], run_as=row["run_as"],
                environment=row["environment"], trigger="restart", params=row["params"],
                restarts=quick, attempt=row["attempt"] + 1, scheduled_for=now + delay, now=now,
                detail=f"restart of run {run_id} in {delay:g}s")
        if quick >= CRASH_LOOP_AFTER:
            tail = " | ".join([line for line in supervisor.log_tail(
                self.home.run_dir(run_id) / "stderr", 25)
                if not line.startswith(supervisor.BUILD_LINE_PREFIX)][-5:])  # the job's own lines
            last = row["reason"] or (f"exit code {code}" if code is not None else "failed")
            detail = f"{last}; restart {quick} in {delay:g}s; log tail: {tail}"
            run_state.event(self.home, run_id, "crash-looping", detail[:2000])
            run_state.event(self.home, new_id, "crash-looping", detail[:2000])
            run_state.transition(self.home, run_id, None, reason=(
                f"{row['reason'] or last} (crash-looping: restart {quick} in {delay:g}s)"))
        if delay:
            heapq.heappush(self.timers, time.monotonic() + delay)
        else:
            self.start(new_id)

    # -- stop requests and desired state -------------------------------------------

    def _stop_requests(self, run_ids) -> dict[int, str]:
        run_ids = list(run_ids)
        if not run_ids:
            return {}
        conn = store.connection(self.home)
        marks = ",".join("?" * len(run_ids))
        out = {}
        for row in conn.execute(
                f"SELECT run_id, detail FROM run_events WHERE state = 'stop-requested' "
                f"AND run_id IN ({marks}) ORDER BY at", run_ids):
            detail = (row["detail"] or "").strip()
            if not detail:
                out[row["run_id"]] = "stopped"
            elif detail.startswith(("stopped", "killed")):
                out[row["run_id"]] = detail
            else:
                out[row["run_id"]] = f"stopped: {detail}"  # "new version 2 by alice" ...
        return out

    def handle_stop_requests(self) -> None:
        if not self.runs:
            return
        for run_id, reason in self._stop_requests(self.runs).items():
            self.runs[run_id].request_stop(reason, settings.STOP_GRACE.number())
        conn = store.connection(self.home)
        ids = list(self.runs)
        marks = ",".join("?" * len(ids))
        for row in conn.execute(
                f"SELECT r.run_id FROM runs r JOIN jobs j ON j.job_id = r.job_id "
                f"WHERE r.run_id IN ({marks}) AND j.desired_state = 'stopped'", ids):
            self.runs[row["run_id"]].request_stop("stopped", settings.STOP_GRACE.number())

    def ensure_long_running(self, force: bool = False) -> None:
        """Queue a run for every service, app or add-in that should run and has none."""
        self.next_services = time.monotonic() + 5.0
        conn = store.connection(self.home)
        rows = conn.execute(
            "SELECT j.job_id, j.current_version, j.owner_id, j.environment FROM jobs j "
            "WHERE j.desired_state = 'running' AND j.type IN ('service', 'app', 'excel') "
            "AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.job_id = j.job_id AND r.state IN "
            "('pending', 'building', 'starting', 'running'))").fetchall()
        for row in rows:
            last = conn.execute("SELECT * FROM runs WHERE job_id = ? ORDER BY run_id DESC LIMIT 1",
                                (row["job_id"],)).fetchone()
            if last is not None and not force:
                continue  # its restart is the business of maybe_restart (backoff)
            now = time.time()
            with store.transaction(conn):
                new_id = run_state.create(
                    conn, job_id=row["job_id"],
                    version=last["version"] if last else row["current_version"],
                    run_as=last["run_as"] if last else row["owner_id"],
                    environment=row["environment"], trigger="restart",
                    params=last["params"] if last else "{}",
                    attempt=(last["attempt"] + 1) if last else 1, now=now,
                    detail="restarted by the daemon")
            log(f"job {row['job_id']} should be running: queued run {new_id}")

    # -- supervision ----------------------------------------------------------------

    def supervise(self, now: float) -> None:
        if not self.runs:
            return
        children: list = []
        metrics = []
        for sv in list(self.runs.values()):
            try:
                metric = self.supervise_one(sv, now, children)
            except Exception as exc:  # noqa: BLE001 - fails this run, not the daemon
                self.abandon(sv, f"supervision failed: {type(exc).__name__}: {exc}")
                continue
            if metric is not None:
                metrics.append((sv, metric))
        if metrics:
            self.record_metrics(metrics)

    def supervise_one(self, sv: Supervised, now: float, children: list) -> tuple | None:
        """One look at one run; its metric when one is due. ``children`` is a list that
        holds the ppid map once one run's rescan has made it (shared by the others)."""
        sv.maybe_resume(now)
        if sv.stopping is not None and now >= sv.stopping[1]:
            sv.kill_tree()
        if now + COALESCE < sv.next_sample:
            return None
        rescan = now >= sv.next_tree
        if rescan:
            sv.next_tree = now + sv.tree_interval()
            if not children:
                children.append(supervisor.ppid_map(self.procs()))
        if sv.sample(now, children[0] if rescan else None):
            log(f"run {sv.run_id}: {sv.killed_reason}")
            return None
        if rescan and sv.stopping is None and sv.find_pump() is None:
            sv.rotate_logs()  # no log pump holds the cap: rotate, every writer held meanwhile
        sv.next_sample = sv.next_sample_at(now)
        if sv.state == "starting":
            self.check_ready(sv, now)
        elif rescan and sv.port and sv.url is None and sv.job_type == "service":
            self.check_service_url(sv)
        return sv.metric(now)

    def procs(self) -> dict:
        """A scan of /proc, made at most once a step."""
        if self._procs is None:
            self._procs = supervisor.scan_procs()
        return self._procs

    def check_ready(self, sv: Supervised, now: float) -> None:
        if sv.port and supervisor.port_answers(sv.port):
            sv.state = "running"
            url = f"http://127.0.0.1:{sv.port}/"
            run_state.transition(self.home, sv.run_id, "running", f"answering at {url}", url=url)
            log(f"run {sv.run_id} answering at {url}")
        elif now - sv.started > (limit := settings.APP_START_TIMEOUT.number()) and sv.stopping is None:
            sv.request_stop(f"failed: no answer on port {sv.port} within "
                            f"{limit:g} s", settings.STOP_GRACE.number())

    def check_service_url(self, sv: Supervised) -> None:
        """A service runs from the start (it may serve nothing); its URL is recorded once
        its port answers, as an app's is."""
        if supervisor.port_answers(sv.port):
            sv.url = f"http://127.0.0.1:{sv.port}/"
            run_state.transition(self.home, sv.run_id, None, url=sv.url)
            run_state.event(self.home, sv.run_id, "answering", sv.url)
            log(f"run {sv.run_id} answering at {sv.url}")

    def record_metrics(self, metrics) -> None:
        conn = store.connection(self.home)
        at = time.time()
        with store.transaction(conn):
            for sv, (cpu, rss) in metrics:
                conn.execute("INSERT INTO run_metrics (run_id, at, cpu, rss) VALUES (?, ?, ?, ?)",
                             (sv.run_id, at, round(cpu, 4), rss))
                run_state.set_columns(conn, sv.run_id, peak_rss=sv.peak_rss,
                                      peak_cpu=round(sv.peak_cpu, 3))
                sv.metric_rows += 1
                if sv.metric_rows > supervisor.METRIC_ROWS and sv.metric_rows % 100 == 0:
                    conn.execute(
                        "DELETE FROM run_metrics WHERE run_id = ? AND at < (SELECT at FROM "
                        "run_metrics WHERE run_id = ? ORDER BY at DESC LIMIT 1 OFFSET ?)",
                        (sv.run_id, sv.run_id, supervisor.METRIC_ROWS - 1))


def main(argv: list[str] | None = None, serve_web: Callable[[Home, int], Any] | None = None,
         serve_dt: Callable[[Home], Any] | None = None) -> int:
    """Run the daemon in the foreground, serving the web app through ``serve_web`` if given
    (the daemon's process is ``python -m localtailr.daemon_main [HOME]``, which gives it)."""
    argv = sys.argv[1:] if argv is None else argv
    home = Home(Path(argv[0]).absolute()) if argv else Home.current()
    try:
        Daemon(home, serve_web=serve_web, serve_dt=serve_dt).serve()
    except AlreadyRunning as exc:
        log(str(exc))
        return 1
    return 0

