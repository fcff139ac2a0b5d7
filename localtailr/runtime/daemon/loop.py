"""The daemon: one a home; starts pending runs, supervises them, restarts services.

All its state is in the store. Where it is and how it is started and stopped from
outside: ``control``. Its loop waits on the wake-up socket (``wakeup.notify``), on a pidfd of every child it
spawned and on the socket of every fork server (``forkservers``: they fork batch and task
runs and say when one ended), at most a second, or until the next schedule fire
(``scheduler.seconds_to_next``); then it ends the runs whose process ended, starts pending
runs, acts on stop requests, samples every tree (memory limit, CPU throttle, metrics) and
calls the hooks: ``schedule.scheduler.tick(home)`` (at each fire time, and at least once a
second) and ``workflows.engine.advance_all(home)`` (at least once a second, and when a run
ended). Every ``BEAT_EVERY`` seconds (in a wake-up of the once-a-second pass; a
heartbeat is stale after ``platform.health.STALE``, 30 s) it records its heartbeats in
the ``tags`` table (``metrics``): ``daemon.heartbeat``, and
``scheduler.heartbeat`` / ``supervisor.heartbeat`` as of the last scheduler tick and
supervision pass (epoch seconds as text). Given a way to serve the web app and the dt
socket (``localtailr.daemon_main`` gives them) it hosts them (``hosting``).

Killed with SIGKILL and started again, it adopts the runs whose process is still the same
(``recovery``), and restarts the services, apps and add-ins whose ``desired_state`` is
``running`` (``restart_policy``). SIGTERM (``localtailr down``) stops every run's process
group (SIGTERM, then SIGKILL after a grace period) and leaves nothing behind.
"""

from __future__ import annotations

import fcntl
import heapq
import json
import os
import queue
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from ... import store
from ...core import settings
from ...core.home import Home, private_umask
from ...core.runs import ACTIVE, LONG_RUNNING
from ...platform import blob_gc, jobs
from ...platform.context import context
from ...store import job_versions, wakeup
from ...store import runs as run_state
from ..process import launch as launcher
from ..process.cpu_limit import cpu_limiting

if TYPE_CHECKING:
    from ..process.reloader import Reloader
from ..process.forkserver_pool import ForkServers
from ..process.procfs import child_lists
from ..process.run_info import LaunchError, prepare
from ..process.supervised import SAMPLE_EVERY, Supervised, on_grid
from ..schedule import scheduler
from ..workflows import engine as workflow_runner
from . import hosting, metrics, recovery, restart_policy
from .control import SHUTDOWN_REASON, describe, info_path, lock_path, log_path, running_info, sweep
from .log import log
from .restart_policy import STABLE_AFTER, stop_requests

IDLE_WAIT = 1.0  # longest sleep of the loop
BEAT_EVERY = 5.0  # seconds between heartbeat writes (a write transaction each)
COALESCE = 0.05  # runs due to be sampled this soon are sampled now, together
LEFTOVER_ROUNDS = 5  # scans for a run's leftovers, each killing what it found




# -- discovery -------------------------------------------------------------------------


































# -- the daemon ------------------------------------------------------------------------


def launch_reason(exc: BaseException) -> str:
    """A failed launch's reason: a LaunchError's message, else the error itself."""
    if isinstance(exc, LaunchError):
        return str(exc)
    return f"failed to launch: {type(exc).__name__}: {exc}"


class AlreadyRunning(RuntimeError):
    def __init__(self, info: dict | None):
        self.info = info or {}
        where = describe(info) if info else "another daemon holds the lock"
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
        self.stopped = threading.Event()  # set with ``stopping``: wakes the blob-gc thread
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
        self.reloader: Reloader | None = None  # watchdog-based, started with the first app in dev

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
            "cpu_limiting": cpu_limiting(),
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
            log(describe(info) + f"; cpu limiting: {info['cpu_limiting']}")
            if self.on_ready is not None:
                self.on_ready(info)
            self.loop()
        finally:
            self.shutdown()

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True
        self.stopped.set()
        wakeup.notify(self.home)

    def start_web(self) -> None:
        if self.serve_web is None:
            return
        self.web = hosting.start_web(self.home, self.port, self.serve_web)
        if self.web is not None:
            self.url = f"http://127.0.0.1:{self.web.server_port}/"

    def start_dt(self) -> None:
        if self.serve_dt is not None:
            self.dt = hosting.start_dt(self.home, self.serve_dt)

    def shutdown(self) -> None:
        self.stopped.set()
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
                hosting.stop_web(self.web)
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
        """Adopt live runs, mark the dead ``lost``, re-queue interrupted builds
        (``recovery``); then queue what should be running and is not."""
        for sv in recovery.recover(self.home, self.launch_failed):
            self.runs[sv.run_id] = sv
        self.ensure_long_running(force=True)

    # -- the loop -------------------------------------------------------------------

    def loop(self) -> None:
        listener = self.listener
        if listener is None:
            raise RuntimeError("the daemon's loop runs once start() has made its listener")
        while not self.stopping:
            now = time.monotonic()
            wake = min(now + IDLE_WAIT, self.next_tick)
            for sv in self.runs.values():
                wake = min(wake, sv.next_wake(now))
            if self.timers:
                wake = min(wake, self.timers[0])
            fds = [listener.fileno(), *self.forkservers.fds()]
            fds += [fd for sv in self.runs.values() if (fd := sv.watch_fd) is not None]
            try:
                ready, _, _ = select.select(fds, [], [], max(0.0, wake - time.monotonic()))
            except InterruptedError:
                ready = []
            woken = listener.fileno() in ready and listener.drain() > 0
            if self.stopping:
                break
            try:
                self.forkservers.pump(set(ready))
                self.step(woken, set(ready))
            except Exception as exc:  # noqa: BLE001 - the loop goes on whatever one step met
                log(f"daemon step failed: {type(exc).__name__}: {exc}")
                time.sleep(0.1)  # a fault that repeats must not spin

    def step(self, woken: bool, ready: set[int] | None = None) -> None:
        now = time.monotonic()
        while self.timers and self.timers[0] <= now:
            heapq.heappop(self.timers)
            woken = True
        periodic = now >= self.next_periodic
        ended = self.reap(restart=True, ready=set() if ready is None else ready)
        self.finish_builds()
        if now >= self.next_tick:
            self.tick_scheduler()
        if periodic:
            self.next_periodic = on_grid(now, IDLE_WAIT)  # with the idle runs' samples
            self._call(self.advance_workflows)
            self._call(self.hot_reload)
        if woken or periodic or ended:
            if ended or woken:  # woken: perhaps a new workflow run, whose first tasks start now
                self._call(self.advance_workflows)
            self.handle_stop_requests()
            self.start_pending()
        if now >= self.next_services:
            self.ensure_long_running()
        self.supervise(time.monotonic())
        self.beats["supervisor"] = time.time()
        if time.monotonic() >= self.next_beat:
            self.heartbeat()

    def advance_workflows(self) -> None:
        """Move the workflow runs forward (``workflows.engine``); the task runs made pending
        are started by this step (``start_pending``), without a wake-up of its own."""
        workflow_runner.advance_all(self.home, wake=False)

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
        now = time.monotonic()
        # nothing due sooner: at the periodic pass, in its wake-up
        self.next_tick = on_grid(now, IDLE_WAIT) if wait >= IDLE_WAIT else now + wait

    def heartbeat(self) -> None:
        """Write the heartbeats: ``daemon.heartbeat`` now, the scheduler's and the
        supervisor's as of their last pass."""
        self.next_beat = on_grid(time.monotonic(), BEAT_EVERY)
        self.beats["daemon"] = time.time()
        metrics.write_heartbeats(self.home, self.beats)

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
            d = job_versions.definition(conn, row["job_id"], row["version"]) or {}
            path = (d.get("entrypoint") or {}).get("file")
            if row["environment"] == "dev" and path:
                watched[row["job_id"]] = path
                names[row["job_id"]] = (row["name"], row["environment"])
                if row["started_at"]:
                    started[row["job_id"]] = row["started_at"]
        if self.reloader is None:
            from ..process.reloader import Reloader  # watchdog: only once an app runs in dev

            self.reloader = Reloader()
        self.reloader.sync(watched, started)
        for job_id in self.reloader.changed():
            if job_id not in names:
                continue
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
            # one wake-up a collection (not a poll of ``stopping``: the idle daemon's CPU)
            if self.stopped.wait(max(0.1, settings.GC_EVERY.number())) or self.stopping:
                return

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
        stops = stop_requests(self.home, [r["run_id"] for r in rows])
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
        info, spec = prepare(self.home, run_id)
        if launcher.image_ready(self.home, spec):
            self.launch(info, spec)
            return
        self.home.run_dir(run_id).mkdir(mode=0o700, parents=True, exist_ok=True)
        self.building.add(run_id)

        def build() -> None:
            try:
                image = launcher.build_image(self.home, spec, self.home.run_dir(run_id) / "stderr")
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
            elif stop_requests(self.home, [info.run_id]):
                reason = stop_requests(self.home, [info.run_id])[info.run_id]
                run_state.transition(self.home, info.run_id, "killed", reason)
            else:
                self.launch(info, image)

    def launch(self, info, spec_or_image) -> None:
        try:
            image = spec_or_image
            if not hasattr(image, "python"):
                image = launcher.build_image(self.home, spec_or_image)
            sv = launcher.launch(self.home, info, image, self.forkservers)
        except Exception as exc:  # noqa: BLE001 - a NUL in a parameter, a full disk ...
            self.launch_failed(info.run_id, launch_reason(exc))
            return
        sv.next_sample = time.monotonic()
        # its tree is first looked for (a pass over /proc) at its second sample: a process
        # just started has no children yet, and most tasks have ended by then
        sv.next_tree = sv.next_sample + SAMPLE_EVERY
        self.runs[sv.run_id] = sv
        log(f"run {sv.run_id} started (pid {sv.pid}, {info.job_type} {info.job_name})")

    def launch_failed(self, run_id: int, reason: str) -> None:
        run_state.transition(self.home, run_id, "failed", reason[:2000])
        log(f"run {run_id} failed to start: {reason}")
        self.maybe_restart(run_id, uptime=0.0)

    # -- ending ---------------------------------------------------------------------

    def reap(self, restart: bool, ready: set[int] | None = None) -> bool:
        """End the runs whose process ended. Given ``ready`` (the descriptors the loop's
        select found readable), a run watched by a pidfd is looked at only when its pidfd
        is in it (the kernel says when it ended: no poll of every run each second); the
        others (a fork server's, whose exits it reports; no pidfd here) always."""
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
            state, reason = "failed", launcher.failure_reason(run_dir, code)
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
        found = sv.leftovers(sv.leftover_scan())
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
        """A long-running job's process ended: start or time its next run
        (``restart_policy.queue_restart``) unless the daemon is stopping."""
        if self.stopping:
            return
        queued = restart_policy.queue_restart(self.home, run_id, uptime, code, stopped)
        if queued is None:
            return
        new_id, delay = queued
        if delay:
            heapq.heappush(self.timers, time.monotonic() + delay)
        else:
            self.start(new_id)

    # -- stop requests and desired state -------------------------------------------

    def handle_stop_requests(self) -> None:
        if not self.runs:
            return
        for run_id, reason in stop_requests(self.home, self.runs).items():
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
        restart_policy.queue_missing(self.home, force)

    # -- supervision ----------------------------------------------------------------

    def supervise(self, now: float) -> None:
        if not self.runs:
            return
        children: list = []
        samples = []
        for sv in list(self.runs.values()):
            try:
                metric = self.supervise_one(sv, now, children)
            except Exception as exc:  # noqa: BLE001 - fails this run, not the daemon
                self.abandon(sv, f"supervision failed: {type(exc).__name__}: {exc}")
                continue
            if metric is not None:
                samples.append((sv, metric))
        if samples:
            metrics.record(self.home, samples)

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
            sv.next_tree = sv.next_tree_at(now)
            if not children:  # the children files, or a scan of /proc where there are none
                children.append(child_lists())
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

    def check_ready(self, sv: Supervised, now: float) -> None:
        if sv.port and launcher.port_answers(sv.port):
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
        if sv.port is not None and launcher.port_answers(sv.port):
            sv.url = f"http://127.0.0.1:{sv.port}/"
            run_state.transition(self.home, sv.run_id, None, url=sv.url)
            run_state.event(self.home, sv.run_id, "answering", sv.url)
            log(f"run {sv.run_id} answering at {sv.url}")


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

