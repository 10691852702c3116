/* glidemed survey transport: saving the response to a server, glidemed serve (the page it
   serves sets DATA.server) or the study's post_url. "Sent" is shown only once the server
   has acknowledged; while it is unreachable (or full) the page retries with backoff; the
   answers stay in this browser and the download button stays. With glidemed serve,
   partial saves are sent too (at most one per PARTIAL_EVERY_MS) with the rater's
   invitation token. */
(function (root) {
  "use strict";

  var PARTIAL_EVERY_MS = 30000;
  var PROBE_EVERY_MS = 4000;  // served pages check that the server is there: a loss shows within 5 s
  var RETRY_MS = [1000, 2000, 4000, 8000, 15000, 30000];

  /** options: server (DATA.server or null), postUrl, storage (GlidemedStorage: tokens), and
      text(key, values) the page's texts, who the contact to name, and the page's
      callbacks: current() gives {rater, head, postedHead, hasRating, atEnd} (null
      before a rater starts), response() the response object, sent(rater, head) is told
      once the server has stored the answers up to that chain head. */
  function GlidemedTransport(options) {
    var server = options.server || null;
    var url = server ? server.api : options.postUrl;
    var send = {busy: false, again: false, timer: null, retries: 0, lastAt: 0, storedAt: "",
                unreachable: false};
    var params = new URLSearchParams(window.location.search);

    (function rememberToken() {
      var rater = (params.get("rater") || "").trim().slice(0, 200), token = params.get("token");
      if (rater && token) options.storage.putToken(rater, token);
    }());

    function tokenFor(rater) {
      if ((params.get("rater") || "").trim().slice(0, 200) === rater && params.get("token")) {
        return params.get("token");
      }
      return options.storage.token(rater);
    }

    function status(text) {
      Array.prototype.forEach.call(document.querySelectorAll("#post-status, .send-status"),
                                   function (node) { node.textContent = text; });
    }

    /** A partial save to glidemed serve, soon (never more often than PARTIAL_EVERY_MS). */
    function schedule() {
      var now = options.current();
      if (!server || !window.fetch || !now || send.busy || send.timer) return;
      if (now.postedHead === now.head || !now.hasRating) return;
      var wait = Math.max(0, send.lastAt + PARTIAL_EVERY_MS - Date.now());
      send.timer = setTimeout(function () { send.timer = null; sendNow(); }, wait);
    }

    function retryLater(why) {
      var wait = RETRY_MS[Math.min(send.retries, RETRY_MS.length - 1)];
      send.retries++;
      status(options.text("retry_in", {why: why, seconds: Math.round(wait / 1000)}));
      send.timer = setTimeout(function () { send.timer = null; sendNow(); }, wait);
    }

    /** Send now. Sent once per set of answers (named by the chain head, which an edited
        comment also changes): revisiting the last page does not send them again. */
    function sendNow() {
      var now = options.current();
      if (!url || !window.fetch || !now) return;
      if (now.postedHead === now.head || (server && !now.hasRating)) return;
      if (send.busy) { send.again = true; return; }
      if (send.timer) { clearTimeout(send.timer); send.timer = null; }
      send.busy = true;
      send.lastAt = Date.now();
      var sentHead = now.head, rater = now.rater;
      var headers = {"Content-Type": "application/json"};
      if (server) {
        headers["X-Glidemed-Rater"] = encodeURIComponent(rater);
        var token = tokenFor(rater);
        if (token) headers["X-Glidemed-Token"] = token;
      }
      if (!server || now.atEnd) status(options.text("sending"));
      fetch(url, {method: "POST", headers: headers, body: JSON.stringify(options.response()),
                  cache: "no-store"})
        .then(function (r) {
          return r.text().then(function (text) {
            var reply = null;
            try { reply = JSON.parse(text); } catch (e) { /* not JSON: the status says enough */ }
            return {status: r.status, ok: r.ok, reply: reply};
          });
        })
        .then(function (result) {
          send.busy = false;
          if (result.ok) {
            send.retries = 0;
            options.sent(rater, sentHead);
            send.storedAt = new Date().toLocaleTimeString();
            status(server ? options.text("stored", {time: send.storedAt}) : options.text("sent"));
          } else {
            var reason = result.reply && result.reply.error ? ": " + result.reply.error : "";
            if (result.status === 429 || result.status === 408 || result.status >= 500) {
              retryLater(options.text("not_stored_yet", {reason: result.status + reason}));
              return;
            }
            status(options.text("send_failed", {reason: result.status + reason, who: options.who}));
            return;  // refused: sent again only once the answers change
          }
          if (send.again) { send.again = false; sendNow(); } else schedule();
        })
        .catch(function () {
          send.busy = false;
          send.again = false;
          retryLater(options.text("unreachable"));
        });
    }

    window.addEventListener("online", function () {
      if (send.timer && !send.busy) { clearTimeout(send.timer); send.timer = null; sendNow(); }
    });
    /** New answers since the server last stored them: say so at once, so that "stored"
        never stands for answers the server does not have. */
    function changed() {
      if (!server || send.retries || send.unreachable) return;  // a failure stays until it is over
      status(send.storedAt ? options.text("saved_locally_since", {time: send.storedAt})
                           : options.text("saved_locally"));
    }

    /** Is the server there? Served pages ask the page's own address (HEAD) every few
        seconds, so that a server gone away is shown at once, not at the next save. */
    function probe() {
      if (!options.current() || send.busy) return;
      fetch(window.location.pathname, {method: "HEAD", cache: "no-store"}).then(function (r) {
        if (!r.ok) throw new Error(String(r.status));
        if (send.unreachable) {
          send.unreachable = false;
          status(options.text("saved_locally"));
          schedule();
        }
      }).catch(function () {
        if (send.unreachable || send.retries) return;
        send.unreachable = true;
        status(options.text("unreachable_kept"));
      });
    }
    if (server && window.fetch) setInterval(probe, PROBE_EVERY_MS);

    return {schedule: schedule, sendNow: sendNow, changed: changed};
  }

  root.GlidemedTransport = GlidemedTransport;
}(typeof self !== "undefined" ? self : this));
