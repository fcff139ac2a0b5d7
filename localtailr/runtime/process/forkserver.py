"""A fork server ("zygote"): one pre-started interpreter of an image that forks a child a run.

Started by the daemon as ``<image python> <this file> <fd> <kind>`` (by path, as the
bootstrap is), with ``fd`` its end of a Unix stream socket pair whose other end the daemon
keeps. It loads the bootstrap (by path: a batch job's process has no ``localtailr`` module
it did not import itself) and, for ``kind`` "task", what a workflow task needs: the task
runner, the store and the SDK names a task module imports (``task``, ``workflow``,
``Schedule``), resolved on the image's own ``sys.path`` exactly as in a spawned task, and,
in an image that has the genuine ``datatailr`` SDK, its batch runner. Then
it serves newline-delimited JSON messages:

- daemon → server: ``{"id", "run_dir", "cwd", "env", "stdout", "stderr"}``: fork a child that
  starts its own session (``setsid``: its own process group, as every run has), has stdin
  from ``/dev/null`` and stdout/stderr appended to the given files, changes to ``cwd``,
  replaces its environment with ``env`` and runs ``bootstrap.main([run_dir])``;
- server → daemon: ``{"ready": pid}`` once loaded; ``{"id", "pid"}`` (or ``{"id", "error"}``)
  once forked; ``{"exit": pid, "code": code}`` when a child ended (``code`` as
  ``Popen.returncode``: -N for signal N). The child starts its session a moment after the
  answer (the daemon signals the pid itself when its group does not exist yet); a child
  that cannot set itself up writes ``failure.json`` and ends with code 127.

Ahead of the next request the server forks a *spare* child (``make_spare``), which forks
its log pump and, for a task, opens the home's database, then waits for its request on a
pipe whose write end the server hands the daemon: ``{"spare": pid, "since": t}`` with the
descriptor (SCM_RIGHTS). The daemon writes the run's request (as above, without ``id``)
straight to that pipe, and says ``{"took": pid}``, upon which the server forks the next
spare; a spare's exit is reported as any run's. A spare whose pipe reaches end of file
without a request (the daemon dropped it, or is gone) ends.

The server exits when its socket reaches end of file: when the daemon is gone, however it
went (``localtailr down``, ``kill -9``). Its children run on (they are session leaders);
a restarted daemon adopts them by pid and create time, and reads the ``exit`` file the
bootstrap writes. A forked child's ``/proc/<pid>/environ`` shows the server's initial
environment block (the kernel reads it from the process's memory), which has
``LOCALTAILR_HOME`` and ``LOCALTAILR_RUN_ID=forkserver`` padded to ``MARK_WIDTH``: the
child overwrites that value in place with its run's id (``mark_environ``), so that every
process it forks, however it detaches, carries the run's id where the daemon looks for
the run's leftovers.
"""

from __future__ import annotations

import os
import sys

if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]  # run by path: this folder must not shadow user modules

import array  # noqa: E402
import atexit  # noqa: E402
import gc  # noqa: E402
import importlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import select  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402

BOOTSTRAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bootstrap.py")
KINDS = ("batch", "task")
MARK = "LOCALTAILR_RUN_ID"
MARK_WIDTH = 40  # characters reserved for the run id in the server's initial environment
SERVER_MARK = "forkserver".ljust(MARK_WIDTH, "-")
TASK_MODULES = ("localtailr.runtime.workflows.task_runner", "localtailr.store", "localtailr.core.home",
                "localtailr.core.task_call", "localtailr.sdk.task", "pickle", "sqlite3", "traceback", "zoneinfo")
TASK_NAMES = ("task", "workflow", "Schedule")
# what a task deployed through the genuine SDK (``localtailr.dt``) imports before its code:
# loaded too when the image has the SDK (its import is ~20 ms of such a task's start);
# ``dt.launch`` redoes what the SDK read from the environment at import
SDK_TASK_MODULES = ("localtailr.dt.launch", "datatailr.sbin.datatailr_run_batch")


def load_bootstrap():
    """The bootstrap module, loaded from its file (not as part of the package)."""
    spec = importlib.util.spec_from_file_location("_localtailr_bootstrap", BOOTSTRAP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def preload(kind: str) -> None:
    if kind != "task":
        return
    try:
        for name in TASK_MODULES:
            importlib.import_module(name)
        localtailr = importlib.import_module("localtailr")
        for name in TASK_NAMES:
            getattr(localtailr, name)
        if importlib.util.find_spec("datatailr") is not None:
            for name in SDK_TASK_MODULES:
                importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - the child imports it again and reports it
        sys.stderr.write(f"forkserver: cannot preload: {type(exc).__name__}: {exc}\n")


def prepare_spare(kind: str) -> None:
    """In a child forked ahead of its run: what every run of ``kind`` starts with, done
    before the run is given: its log pump forked, and for a task its database opened."""
    try:
        pump = sys.modules.get("_localtailr_logpump")
        if pump is not None:
            pump.prepare()
        if kind == "task":
            runner = sys.modules.get("localtailr.runtime.workflows.task_runner")
            home = os.environ.get("LOCALTAILR_HOME")
            if runner is not None and home:
                runner.prepare(home)
    except Exception as exc:  # noqa: BLE001 - the run does it itself then
        sys.stderr.write(f"forkserver: cannot prepare a child: {type(exc).__name__}: {exc}\n")


class Server:
    def __init__(self, sock: socket.socket, bootstrap, kind: str = "batch"):
        self.sock = sock
        self.bootstrap = bootstrap
        self.kind = kind
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        self.spare: tuple[int, float] | None = None  # (pid, forked at): offered to the daemon
        self.runs: set[int] = set()  # children given a run, or to be: their exits are reported

    def send(self, message: dict) -> None:
        try:
            self.sock.sendall(json.dumps(message).encode() + b"\n")
        except OSError:
            pass  # the daemon is gone: the next read says so

    def serve(self) -> int | None:
        """Serve until end of file (None); in a forked child, the run's exit code."""
        self.send({"ready": os.getpid()})
        code = self.make_spare()
        if code is not None:
            return code
        buf = b""
        while True:
            ready, _, _ = select.select([self.sock.fileno(), self.wake_r], [], [])
            if self.wake_r in ready:
                try:
                    while os.read(self.wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                self.reap()
            if self.sock.fileno() in ready:
                data = self.sock.recv(1 << 16)
                if not data:
                    return None
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    message = json.loads(line)
                    if "took" in message:
                        code = self.taken(int(message["took"]))
                    else:
                        code = self.fork(message)
                    if code is not None:
                        return code

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.spare is not None and pid == self.spare[0]:
                self.spare = None  # given a run, or died unused: a new one once one is taken
            if pid in self.runs:
                self.runs.discard(pid)
                self.send({"exit": pid, "code": os.waitstatus_to_exitcode(status)})

    def fork(self, request: dict) -> int | None:
        """Fork a child for the run (the daemon had no spare at hand); in the child, run it
        and return its exit code."""
        try:
            pid = os.fork()
        except OSError as exc:
            self.send({"id": request["id"], "error": f"cannot fork: {exc}"})
            return None
        if pid == 0:
            self.leave_server()
            return self.child(request)
        self.runs.add(pid)
        self.send({"id": request["id"], "pid": pid})
        return self.make_spare() if self.spare is None else None

    def taken(self, pid: int) -> int | None:
        """The daemon gave the spare ``pid`` a run: fork the next one."""
        if self.spare is not None and self.spare[0] == pid:
            self.spare = None
        return self.make_spare() if self.spare is None else None

    def make_spare(self) -> int | None:
        """Fork the child of the next run ahead of its request, and hand the daemon the
        write end of its request pipe (``{"spare": pid, "since": monotonic time}`` with the
        descriptor): the daemon writes the run's request to it directly, and says
        ``{"took": pid}``. The fork and the child's first page copies are done while the
        daemon is busy elsewhere. In that child, once it has its request, the run's exit
        code (it ends at once if its pipe reaches end of file: the daemon is gone, or
        dropped it). Its exit is reported whether it was given a run or not."""
        try:
            r, w = os.pipe()
        except OSError:
            return None
        since = time.monotonic()
        try:
            pid = os.fork()
        except OSError:
            os.close(r)
            os.close(w)
            return None
        if pid != 0:
            os.close(r)
            self.spare = (pid, since)
            self.runs.add(pid)
            try:
                self.sock.sendmsg([json.dumps({"spare": pid, "since": since}).encode() + b"\n"],
                                  [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [w]))])
            except OSError:
                pass  # the daemon is gone: so is the spare, its pipe closed below
            finally:
                os.close(w)
            return None
        os.close(w)
        self.leave_server()
        prepare_spare(self.kind)
        chunks = []
        while chunk := os.read(r, 1 << 16):
            chunks.append(chunk)
        os.close(r)
        try:
            request = json.loads(b"".join(chunks))
        except ValueError:  # nothing (the daemon is gone), or cut short as it died
            os._exit(0)
        return self.child(request)

    def leave_server(self) -> None:
        """In a child: drop what belongs to the server."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.sock.close()
        os.close(self.wake_r)
        os.close(self.wake_w)

    def child(self, request: dict) -> int:
        """Set the child up as a spawned run would be (a failure there is written to the
        run's ``failure.json`` and ends it with code 127), then run the bootstrap."""
        try:
            os.setsid()
            null = os.open(os.devnull, os.O_RDONLY)
            out = os.open(request["stdout"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            err = os.open(request["stderr"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            for fd, target in ((null, 0), (out, 1), (err, 2)):
                os.dup2(fd, target)
                os.close(fd)
            os.chdir(request["cwd"])
            env = request["env"]
            environ = os.environ  # made ``env``, changing only what differs (most does not)
            for name in [name for name in environ if name not in env]:
                del environ[name]
            for name, value in env.items():
                if environ.get(name) != value:
                    environ[name] = value
            time.tzset()
            for path in reversed((env.get("PYTHONPATH") or "").split(os.pathsep)):
                if path and path not in sys.path:
                    sys.path.insert(0, path)
            sys.argv = [BOOTSTRAP, request["run_dir"]]
            mark_environ(env.get(MARK, ""))
        except BaseException as exc:  # noqa: BLE001 - the run's reason
            try:
                with open(os.path.join(request["run_dir"], "failure.json"), "w") as f:
                    json.dump({"reason": f"cannot start the run: {type(exc).__name__}: {exc}"}, f)
            finally:
                os._exit(127)
        return self.bootstrap.main([request["run_dir"]])


def mark_environ(run_id: str) -> bool:
    """Write ``run_id`` over the server's mark in this process's initial environment block
    (what ``/proc/<pid>/environ`` shows, and what a fork inherits), padding with a
    ``LOCALTAILR_PAD`` variable so that the block keeps its length. False if the block has
    no mark (a server started without one) or the id does not fit."""
    old = f"{MARK}={SERVER_MARK}".encode()
    new = f"{MARK}={run_id}\0LOCALTAILR_PAD=".encode()
    if not run_id or len(new) > len(old):
        return False
    new = new.ljust(len(old), b"-")
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[47]), int(fields[48])  # env_start, env_end (fields 50, 51)
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            block = b"\0" + mem.read(end - start)
            at = block.find(b"\0" + old + b"\0")
            if at < 0:
                return False
            mem.seek(start + at)  # the block's offset of the mark (one NUL prepended)
            mem.write(new)
    except (OSError, IndexError, ValueError):
        return False  # the leftover sweep then knows the child by its tree only
    return True


def finish_child(code: int) -> None:
    """End a forked child as the interpreter's exit would: wait for non-daemon threads, run
    the atexit functions, flush; then leave without tearing the interpreter down."""
    threading = sys.modules.get("threading")
    if threading is not None and hasattr(threading, "_shutdown"):
        try:
            threading._shutdown()
        except Exception:  # noqa: BLE001 - as at interpreter exit
            pass
    try:
        atexit._run_exitfuncs()
    except Exception:  # noqa: BLE001
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    os._exit(code if isinstance(code, int) and 0 <= code <= 255 else 1)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sock = socket.socket(fileno=int(argv[0]))
    sock.setblocking(True)
    kind = argv[1] if len(argv) > 1 else "batch"
    bootstrap = load_bootstrap()
    try:
        bootstrap.log_pump()  # every run of the server's starts one: loaded once, here
    except OSError:
        pass  # each child says so as it starts without one
    preload(kind)
    gc.freeze()  # what is loaded stays shared with the children (no copy on a collection)
    code = Server(sock, bootstrap, kind).serve()
    if code is not None:
        finish_child(code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
