// localtailr status page: times in the viewer's zone, and a run's log followed by polling
// /api/log/tail from where the server-rendered first page ended (no other script).
(function () {
  "use strict";
  // A next fire time is printed in the job's zone; add the viewer's own local time.
  Array.prototype.forEach.call(document.querySelectorAll("time.fire[datetime]"), function (el) {
    var at = new Date(el.getAttribute("datetime"));
    if (isNaN(at)) return;
    var local = document.createElement("span");
    local.className = "local";
    local.textContent = " · your time " + at.toLocaleString([], { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
    el.appendChild(local);
  });
})();
(function () {
  "use strict";
  var log = document.getElementById("log");
  if (!log) return;
  var run = log.dataset.run, stream = log.dataset.stream, cursor = log.dataset.cursor || "", status = document.getElementById("log-status");
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
