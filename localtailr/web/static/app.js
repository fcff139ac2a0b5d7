// localtailr status page: follow a run's log by polling /api/log/tail (no other script).
(function () {
  "use strict";
  var log = document.getElementById("log");
  if (!log) return;
  var run = log.dataset.run, stream = log.dataset.stream, cursor = "", status = document.getElementById("log-status");
  var state = document.getElementById("run-state");
  var terminal = ["succeeded", "failed", "killed", "lost", "skipped"];
  function atBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 40; }
  function poll() {
    var url = "/api/log/tail?run_id=" + encodeURIComponent(run) + "&stream=" + encodeURIComponent(stream) +
      "&cursor=" + encodeURIComponent(cursor);
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json().then(function (body) { return [r.ok, body]; }); })
      .then(function (res) {
        var ok = res[0], body = res[1];
        if (!ok) { status.textContent = body.error || "cannot read the log"; return; }
        var follow = atBottom();
        if (body.text) { log.appendChild(document.createTextNode(body.text)); }
        if (follow) { log.scrollTop = log.scrollHeight; }
        cursor = body.cursor;
        if (state && state.dataset.state !== body.state) { state.dataset.state = body.state; state.textContent = " → " + body.state; }
        if (body.ended && !body.text) { status.textContent = "run " + body.state + ": end of log"; log.dataset.ended = "1"; return; }
        status.textContent = body.ended ? "" : "following…";
        setTimeout(poll, body.text ? 200 : 1000);
      })
      .catch(function () { status.textContent = "connection lost, retrying…"; setTimeout(poll, 3000); });
  }
  poll();
})();
