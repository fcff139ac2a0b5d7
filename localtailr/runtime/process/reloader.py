"""Hot reload: apps in dev restart when their source file changes (watchdog).

The daemon tells the reloader which files to watch (``sync``) and asks, each loop,
which jobs' files changed since (``changed``). Changes are debounced: an editor that
writes a file in several steps causes one restart.
"""

from __future__ import annotations

import os
import threading
import time

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

DEBOUNCE = 0.3  # seconds of quiet after the last change before it counts


class Reloader(FileSystemEventHandler):
    """Watches the entrypoint files of running jobs."""

    def __init__(self) -> None:
        self._observer = Observer()
        self._observer.daemon = True
        self._started = False
        self._lock = threading.Lock()
        self._files: dict[str, set[int]] = {}  # real path -> job ids
        self._watches: dict[str, ObservedWatch] = {}  # folder -> watch
        self._dirty: dict[int, float] = {}  # job id -> time of the last change
        self._reported: dict[float, set[int]] = {}  # run start -> jobs found stale (once a run)

    def sync(self, watched: dict[int, str], started: dict[int, float] | None = None) -> None:
        """Watch exactly these ``{job_id: file}`` from now on.

        ``started`` (job id -> epoch seconds its run started) catches what an event cannot:
        a file changed after the run started but before the watch was set up.
        """
        files: dict[str, set[int]] = {}
        now = time.monotonic()
        for job_id, path in watched.items():
            if path and os.path.isfile(path):
                files.setdefault(os.path.realpath(path), set()).add(job_id)
                since = (started or {}).get(job_id)
                if since is None:
                    continue
                try:
                    stale = os.stat(path).st_mtime > since
                except OSError:
                    stale = False
                if stale and job_id not in self._reported.get(since, set()):
                    self._reported.setdefault(since, set()).add(job_id)
                    with self._lock:
                        self._dirty.setdefault(job_id, now - DEBOUNCE)
        folders = {os.path.dirname(p) for p in files}
        with self._lock:
            self._files = files
            for folder in set(self._watches) - folders:
                self._observer.unschedule(self._watches.pop(folder))
            for folder in folders - set(self._watches):
                self._watches[folder] = self._observer.schedule(self, folder, recursive=False)
            for job_id in [j for j in self._dirty if not any(j in ids for ids in files.values())]:
                del self._dirty[job_id]
        if folders and not self._started:
            self._observer.start()
            self._started = True

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("modified", "created", "moved", "closed"):
            return
        paths = [os.fsdecode(event.src_path), os.fsdecode(getattr(event, "dest_path", "") or "")]
        now = time.monotonic()
        with self._lock:
            for path in paths:
                for job_id in self._files.get(os.path.realpath(path) if path else "", ()):
                    self._dirty[job_id] = now

    def changed(self) -> set[int]:
        """Jobs whose file changed and has been quiet for ``DEBOUNCE`` seconds (each once)."""
        now = time.monotonic()
        with self._lock:
            ready = {j for j, at in self._dirty.items() if now - at >= DEBOUNCE}
            for j in ready:
                del self._dirty[j]
        return ready

    def close(self) -> None:
        if self._started:
            self._observer.stop()
            self._observer.join(timeout=2)
