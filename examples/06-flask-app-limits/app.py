"""A Flask app under memory and CPU limits, and what happens when it breaks them."""

import time
import urllib.error
import urllib.request

from localtailr import App, Resources


def make_app():
    from flask import Flask

    app = Flask(__name__)
    hoard = []

    @app.route("/")
    def hello():
        return "hello from a supervised Flask app"

    @app.route("/hog")
    def hog():
        while True:
            hoard.append(bytearray(16 << 20))  # 16 MiB at a time, touched
            hoard[-1][::4096] = b"x" * len(hoard[-1][::4096])

    return app


def main():
    app = App(name="Hello Flask", entrypoint=make_app, framework="flask",
              resources=Resources(memory="200m", cpu=0.5))
    app.run()
    deadline = time.monotonic() + 120
    while app.url is None and time.monotonic() < deadline:
        time.sleep(0.1)
    print("serving at", app.url)
    print("GET / ->", urllib.request.urlopen(app.url, timeout=10).read().decode())
    try:
        urllib.request.urlopen(app.url.rstrip("/") + "/hog", timeout=30)
    except (urllib.error.URLError, ConnectionError, OSError) as e:
        print("GET /hog -> connection ended:", type(e).__name__)
    first = app.runs()[-1]
    while time.monotonic() < deadline:
        first = [r for r in app.runs() if r["run_id"] == first["run_id"]][0]
        if first["state"] not in ("pending", "building", "starting", "running"):
            break
        time.sleep(0.1)
    print(f"run {first['run_id']}: {first['state']} - {first['reason']}")
    app.stop()


if __name__ == "__main__":
    main()
