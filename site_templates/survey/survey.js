/* Survey page: plain JavaScript, no framework. It makes no request unless the study
   sets a POST address. Every answer is saved in localStorage at once; the response
   file carries a SHA-256 hash chain over the answers (see glidemed/survey/chain.py). */
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("survey-data").textContent);
  var RESPONSE_SCHEMA = "glidemed-response/1";
  var CHAIN_ALGORITHM = "sha256-chain/2";
  var STORE_PREFIX = "glidemed:" + DATA.build_hash + ":";
  var LAST_RATER = STORE_PREFIX + "last-rater";
  var ASPECTS = DATA.aspects;
  var FLAGS = DATA.flags;
  var FIRST = DATA.first_value || 0;  // the number shown for a scale's first level

  // ---------------------------------------------------------------- SHA-256
  var K = [0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,
    0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,
    0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,
    0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,
    0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,
    0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,
    0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,
    0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2];

  function ror(x, n) { return (x >>> n) | (x << (32 - n)); }

  /** Hex SHA-256 of the UTF-8 bytes of a string (synchronous, works on file:// pages). */
  function sha256hex(text) {
    var bytes = new TextEncoder().encode(text);
    var length = bytes.length;
    var buf = new Uint8Array(((length + 9 + 63) >> 6) << 6);
    buf.set(bytes);
    buf[length] = 0x80;
    var view = new DataView(buf.buffer);
    view.setUint32(buf.length - 8, Math.floor(length / 0x20000000));
    view.setUint32(buf.length - 4, (length << 3) >>> 0);
    var H = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    var W = new Int32Array(64);
    for (var off = 0; off < buf.length; off += 64) {
      var t;
      for (t = 0; t < 16; t++) W[t] = view.getInt32(off + t * 4);
      for (t = 16; t < 64; t++) {
        var a15 = W[t - 15], a2 = W[t - 2];
        W[t] = (W[t - 16] + (ror(a15, 7) ^ ror(a15, 18) ^ (a15 >>> 3)) + W[t - 7] +
                (ror(a2, 17) ^ ror(a2, 19) ^ (a2 >>> 10))) | 0;
      }
      var a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
      for (t = 0; t < 64; t++) {
        var t1 = (h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + W[t]) | 0;
        var t2 = ((ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      H[0] = (H[0] + a) | 0; H[1] = (H[1] + b) | 0; H[2] = (H[2] + c) | 0; H[3] = (H[3] + d) | 0;
      H[4] = (H[4] + e) | 0; H[5] = (H[5] + f) | 0; H[6] = (H[6] + g) | 0; H[7] = (H[7] + h) | 0;
    }
    return H.map(function (x) { return ("00000000" + (x >>> 0).toString(16)).slice(-8); }).join("");
  }

  // ---------------------------------------------------------------- hash chain
  /** JSON with sorted keys and no spaces, as Python's json.dumps(sort_keys=True, ensure_ascii=False). */
  function canonicalEvent(ev) {
    return '{"at":' + JSON.stringify(ev.at) + ',"field":' + JSON.stringify(ev.field) +
      ',"position":' + ev.position + ',"seq":' + ev.seq + ',"value":' + JSON.stringify(ev.value) + "}";
  }
  /** Canonical JSON of plain data (objects with ASCII keys, strings, numbers, null). */
  function canonicalJson(value) {
    if (value === null || typeof value !== "object") return JSON.stringify(value);
    if (Array.isArray(value)) return "[" + value.map(canonicalJson).join(",") + "]";
    return "{" + Object.keys(value).sort().map(function (k) {
      return JSON.stringify(k) + ":" + canonicalJson(value[k]);
    }).join(",") + "}";
  }
  function chainStep(head, ev) { return sha256hex(head + "\n" + canonicalEvent(ev)); }
  /** The chain starts from the build and the rater block (id and profile) of the file. */
  function chainStart(rater) { return sha256hex(DATA.build_hash + "\n" + canonicalJson(rater)); }
  function raterBlock() { return {id: state.rater, profile: state.profile}; }

  /** Replace lone UTF-16 surrogates, which cannot be written as UTF-8. */
  function wellFormed(text) {
    var out = "";
    for (var i = 0; i < text.length; i++) {
      var code = text.charCodeAt(i);
      if (code >= 0xd800 && code <= 0xdbff) {
        var next = text.charCodeAt(i + 1);
        if (next >= 0xdc00 && next <= 0xdfff) { out += text[i] + text[i + 1]; i++; continue; }
        out += "\ufffd";
      } else if (code >= 0xdc00 && code <= 0xdfff) {
        out += "\ufffd";
      } else {
        out += text[i];
      }
    }
    return out;
  }

  /** Rater ids are compared trimmed and in Unicode NFC, as glidemed analyze does. */
  function normaliseId(text) { return wellFormed(text.trim()).normalize("NFC"); }

  // ---------------------------------------------------------------- seeded randomness
  function sfc32(a, b, c, d) {
    return function () {
      a |= 0; b |= 0; c |= 0; d |= 0;
      var t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (c << 21) | (c >>> 11);
      c = (c + t) | 0;
      return (t >>> 0) / 4294967296;
    };
  }
  function below(rand, n) { return Math.floor(rand() * n); }
  function shuffle(rand, list) {
    for (var i = list.length - 1; i > 0; i--) {
      var j = below(rand, i + 1), tmp = list[i];
      list[i] = list[j]; list[j] = tmp;
    }
    return list;
  }

  /** This rater's order and images; mirrored by glidemed.survey.randomize.rater_plan. */
  function raterPlan(rater) {
    var hex = sha256hex(DATA.build_hash + "\n" + rater);
    var rand = sfc32(parseInt(hex.slice(0, 8), 16), parseInt(hex.slice(8, 16), 16),
                     parseInt(hex.slice(16, 24), 16), parseInt(hex.slice(24, 32), 16));
    for (var w = 0; w < 12; w++) rand();
    var n = DATA.panels.length, k = DATA.images_per_panel, i;
    var indices = [];
    for (i = 0; i < n; i++) indices.push(i);
    shuffle(rand, indices);
    var order = indices.map(function (p) {
      var images = shuffle(rand, DATA.panels[p].images.slice()).slice(0, k);
      return {p: p, repeat: false, images: images};
    });
    var repeats = Math.min(DATA.repeat_panels, n);
    var picks = shuffle(rand, order.slice()).slice(0, repeats);
    picks.forEach(function (original) {
      var at = order.indexOf(original);
      var low = Math.min(at + 2, order.length);
      var where = low + below(rand, order.length - low + 1);
      var m = original.images.length;
      var shift = m > 1 ? 1 + below(rand, m - 1) : 0;
      var images = original.images.slice(shift).concat(original.images.slice(0, shift));
      order.splice(where, 0, {p: original.p, repeat: true, images: images});
    });
    return order;
  }

  // ---------------------------------------------------------------- storage
  var storageOk = true;
  function storageGet(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }
  function storageWarn() {
    storageOk = false;
    var box = document.getElementById("storage-warning");
    box.textContent = "Your answers could not be saved in this browser (storage is full or " +
      "switched off). Download your responses now and keep the file; " +
      "a reload or a closed tab would lose unsaved answers.";
    box.hidden = false;
  }

  var state = null;     // everything this rater has done; saved on every answer
  var heads = null;     // {head, before}: chain head and the head before the last event
  var enteredAt = 0;    // when the current panel was shown (performance.now())

  function now() { return new Date().toISOString(); }

  function flushTime() {
    if (!state || state.pos >= state.order.length) return;
    var t = performance.now();
    var key = String(state.pos);
    state.seconds[key] = (state.seconds[key] || 0) + (t - enteredAt) / 1000;
    enteredAt = t;
  }

  function save() {
    flushTime();
    state.updated = now();
    try {
      window.localStorage.setItem(STORE_PREFIX + "rater:" + state.rater, JSON.stringify(state));
      window.localStorage.setItem(LAST_RATER, state.rater);
      if (!storageOk) {
        storageOk = true;
        document.getElementById("storage-warning").hidden = true;
      }
    } catch (e) {
      storageWarn();
    }
    scheduleSend();
  }

  function load(rater) {
    var text = storageGet(STORE_PREFIX + "rater:" + rater);
    if (!text) return null;
    try {
      var saved = JSON.parse(text);
      return saved && saved.rater === rater && Array.isArray(saved.events) ? saved : null;
    } catch (e) {
      return null;
    }
  }

  function recomputeHeads() {
    var head = chainStart(raterBlock()), before = head;
    state.events.forEach(function (ev) { before = head; head = chainStep(head, ev); });
    heads = {head: head, before: before};
  }

  // ---------------------------------------------------------------- answers
  function answersAt(pos) {
    var key = String(pos);
    if (!state.answers[key]) state.answers[key] = {ratings: {}, flags: {}, comment: ""};
    return state.answers[key];
  }

  /** Record one answer as a chained event; consecutive edits of one comment share an event. */
  function record(field, value) {
    var events = state.events, last = events[events.length - 1];
    var ev = {seq: events.length, position: state.pos, field: field, value: value, at: now()};
    if (field === "comment" && last && last.field === "comment" && last.position === state.pos) {
      ev.seq = last.seq;
      events[events.length - 1] = ev;
      heads.head = chainStep(heads.before, ev);
    } else {
      events.push(ev);
      heads.before = heads.head;
      heads.head = chainStep(heads.head, ev);
    }
    var answers = answersAt(state.pos);
    if (field === "comment") answers.comment = value;
    else if (field.indexOf("rating:") === 0) answers.ratings[field.slice(7)] = value;
    else answers.flags[field.slice(5)] = value;
    save();
    updateProgress();
  }

  function positionComplete(pos) {
    var answers = state.answers[String(pos)];
    return !!answers && ASPECTS.every(function (a) {
      return typeof answers.ratings[a.key] === "number";
    });
  }
  function answeredCount() {
    var n = 0;
    for (var i = 0; i < state.order.length; i++) if (positionComplete(i)) n++;
    return n;
  }

  function buildResponse() {
    if (state.pos < state.order.length) save();
    var complete = answeredCount() === state.order.length;
    if (complete && !state.completed) state.completed = now();
    var panels = [];
    for (var pos = 0; pos < state.order.length; pos++) {
      if (!state.seen[String(pos)]) continue;
      var entry = state.order[pos], answers = answersAt(pos), ratings = {}, flags = {};
      ASPECTS.forEach(function (a) {
        var v = answers.ratings[a.key];
        ratings[a.key] = typeof v === "number" ? v : null;
      });
      FLAGS.forEach(function (f) { flags[f.key] = answers.flags[f.key] === true; });
      panels.push({token: DATA.panels[entry.p].token, position: pos, repeat: entry.repeat,
                   images: entry.images.slice(), ratings: ratings, flags: flags,
                   comment: answers.comment,
                   seconds: Math.round((state.seconds[String(pos)] || 0) * 100) / 100});
    }
    return {
      schema: RESPONSE_SCHEMA, study_id: DATA.study_id, build_hash: DATA.build_hash,
      rater: raterBlock(),
      browser: String(navigator.userAgent || "").slice(0, 1000),
      started: state.started, updated: state.updated, completed: state.completed || null,
      complete: complete,
      order: state.order.map(function (e) { return DATA.panels[e.p].token; }),
      panels: panels, events: state.events,
      chain: {algorithm: CHAIN_ALGORITHM, head: heads.head}
    };
  }

  function responseFileName() {
    // Letters outside A-Z become "_"; a short hash of the id then keeps two raters apart.
    var safe = state.rater.replace(/[^A-Za-z0-9_-]+/g, "_").slice(0, 60) || "rater";
    if (safe !== state.rater) safe += "-" + sha256hex(state.rater).slice(0, 8);
    return "response-" + DATA.study_id + "-" + safe + ".json";
  }

  function download() {
    var text = JSON.stringify(buildResponse(), null, 1);
    var url = URL.createObjectURL(new Blob([text], {type: "application/json"}));
    var link = document.createElement("a");
    link.href = url;
    link.download = responseFileName();
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(url); link.remove(); }, 60000);
  }

  // ================================================================ transport (posting)
  // Saving to a server: glidemed serve (DATA.server, set in the page it serves) or the
  // study's post_url. "Sent" is shown only once the server has acknowledged; while it is
  // unreachable (or full) the page retries with backoff; the answers stay in this
  // browser and the download button stays. With glidemed serve, partial saves are sent
  // too (at most one per PARTIAL_EVERY_MS) with the rater's invitation token.
  var SERVER = DATA.server || null;
  var SEND_URL = SERVER ? SERVER.api : DATA.post_url;
  var PARTIAL_EVERY_MS = 30000;
  var RETRY_MS = [1000, 2000, 4000, 8000, 15000, 30000];
  var send = {busy: false, again: false, timer: null, retries: 0, lastAt: 0};
  var urlParams = new URLSearchParams(window.location.search);

  (function rememberToken() {
    var rater = (urlParams.get("rater") || "").trim().slice(0, 200), token = urlParams.get("token");
    if (!rater || !token) return;
    try { window.localStorage.setItem(STORE_PREFIX + "token:" + rater, token); } catch (e) { /* URL still has it */ }
  }());

  function tokenFor(rater) {
    if ((urlParams.get("rater") || "").trim().slice(0, 200) === rater && urlParams.get("token")) {
      return urlParams.get("token");
    }
    return storageGet(STORE_PREFIX + "token:" + rater);
  }

  function sendStatus(text) {
    Array.prototype.forEach.call(document.querySelectorAll("#post-status, .send-status"),
                                 function (node) { node.textContent = text; });
  }

  function hasRating() {
    return state.events.some(function (ev) { return ev.field.indexOf("rating:") === 0; });
  }

  /** A partial save to glidemed serve, soon (never more often than PARTIAL_EVERY_MS). */
  function scheduleSend() {
    if (!SERVER || !window.fetch || !state || send.busy || send.timer) return;
    if (state.postedHead === heads.head || !hasRating()) return;
    var wait = Math.max(0, send.lastAt + PARTIAL_EVERY_MS - Date.now());
    send.timer = setTimeout(function () { send.timer = null; sendNow(); }, wait);
  }

  function retryLater(why) {
    var wait = RETRY_MS[Math.min(send.retries, RETRY_MS.length - 1)];
    send.retries++;
    sendStatus(why + " Your answers are kept in this browser and will be sent again in " +
               Math.round(wait / 1000) + " s; you can also download the file.");
    send.timer = setTimeout(function () { send.timer = null; sendNow(); }, wait);
  }

  function postResponse() { sendNow(); }

  function sendNow() {
    // Sent once per set of answers (named by the chain head, which an edited comment also
    // changes): revisiting the last page does not send the same answers again.
    if (!SEND_URL || !window.fetch || !state) return;
    if (state.postedHead === heads.head || (SERVER && !hasRating())) return;
    if (send.busy) { send.again = true; return; }
    if (send.timer) { clearTimeout(send.timer); send.timer = null; }
    send.busy = true;
    send.lastAt = Date.now();
    var sentHead = heads.head, rater = state.rater;
    var headers = {"Content-Type": "application/json"};
    if (SERVER) {
      headers["X-Glidemed-Rater"] = encodeURIComponent(rater);
      var token = tokenFor(rater);
      if (token) headers["X-Glidemed-Token"] = token;
    }
    if (!SERVER || state.pos >= state.order.length) sendStatus("Sending your responses...");
    fetch(SEND_URL, {method: "POST", headers: headers, body: JSON.stringify(buildResponse()),
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
          if (state && state.rater === rater) { state.postedHead = sentHead; save(); }
          var when = new Date().toLocaleTimeString();
          sendStatus(SERVER ? "Your responses were sent and stored by the server (" + when + ")."
                     : "Your responses were sent. Please also download the file.");
        } else {
          var reason = result.reply && result.reply.error ? ": " + result.reply.error : "";
          if (result.status === 429 || result.status === 408 || result.status >= 500) {
            retryLater("The server could not store your answers yet (" + result.status + reason + ").");
            return;
          }
          sendStatus("Sending failed (" + result.status + reason + "). " +
                     "Please download the file and e-mail it.");
          return;  // refused: sent again only once the answers change
        }
        if (send.again) { send.again = false; sendNow(); } else scheduleSend();
      })
      .catch(function () {
        send.busy = false;
        send.again = false;
        retryLater("The server cannot be reached.");
      });
  }

  window.addEventListener("online", function () {
    if (send.timer && !send.busy) { clearTimeout(send.timer); send.timer = null; sendNow(); }
  });
  if (SERVER) {
    var panelDownload = document.querySelector("#panel-screen .download");
    var panelStatus = document.createElement("p");
    panelStatus.className = "send-status";
    panelStatus.setAttribute("aria-live", "polite");
    panelDownload.parentNode.insertBefore(panelStatus, panelDownload.nextSibling);
  }
  // ================================================================ end of transport

  // ---------------------------------------------------------------- page building
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function $(id) { return document.getElementById(id); }

  function buildStart() {
    document.title = DATA.title;
    $("title").textContent = DATA.title;
    if (DATA.panel_heading) $("panel-heading").textContent = DATA.panel_heading;
    $("instructions").textContent = DATA.instructions;
    var scales = $("scales");
    ASPECTS.forEach(function (aspect) {
      scales.appendChild(el("h3", {}, aspect.label));
      if (aspect.question) scales.appendChild(el("p", {}, aspect.question));
      var list = el("ol", {start: String(FIRST), "class": "scale"});
      aspect.levels.forEach(function (level, i) { list.appendChild(el("li", {}, (i + FIRST) + " \u2013 " + level)); });
      scales.appendChild(list);
    });
    if (DATA.examples.length) {
      var examples = $("examples");
      examples.appendChild(el("h3", {}, "Examples"));
      var row = el("div", {"class": "examples"});
      DATA.examples.forEach(function (ex) {
        var aspect = ASPECTS.filter(function (a) { return a.key === ex.aspect; })[0];
        var figure = el("figure");
        var label = aspect.label + " " + ex.level + (ex.caption ? ": " + ex.caption : "");
        figure.appendChild(el("img", {src: DATA.images[ex.image], alt: "Example: " + label}));
        figure.appendChild(el("figcaption", {}, label));
        row.appendChild(figure);
      });
      examples.appendChild(row);
    }
    if (DATA.consent) {
      $("consent-box").hidden = false;
      $("consent-text").textContent = DATA.consent;
    }
    var profile = $("profile");
    DATA.profile.forEach(function (field, i) {
      var box = el("div", {"class": "field"});
      var id = "profile-" + i;
      box.appendChild(el("label", {"for": id}, field.label + (field.required ? " (required)" : "")));
      var input;
      if (field.choices.length) {
        input = el("select", {id: id});
        input.appendChild(el("option", {value: ""}, "Choose..."));
        field.choices.forEach(function (c) { input.appendChild(el("option", {value: c}, c)); });
      } else {
        input = el("input", {id: id, type: "text", maxlength: "200", autocomplete: "off"});
      }
      if (field.required) input.setAttribute("aria-required", "true");
      input.dataset.key = field.key;
      box.appendChild(input);
      profile.appendChild(box);
    });
    $("start-form").addEventListener("submit", function (e) { e.preventDefault(); start(); });
  }

  function buildRatingForm() {
    var box = $("aspects");
    ASPECTS.forEach(function (aspect, ai) {
      var fieldset = el("fieldset", {"class": "aspect", "data-aspect": String(ai)});
      var legend = el("legend", {}, aspect.label);
      fieldset.appendChild(legend);
      if (aspect.question) fieldset.appendChild(el("p", {"class": "question"}, aspect.question));
      var choices = el("div", {"class": "choices"});
      aspect.levels.forEach(function (level, v) {
        var id = "rate-" + ai + "-" + v;
        var label = el("label", {"for": id, "class": "choice"});
        var input = el("input", {type: "radio", id: id, name: "rate-" + ai, value: String(v),
                                 "aria-label": aspect.label + " " + (v + FIRST),
                                 "aria-describedby": id + "-text"});
        input.addEventListener("change", function () { if (input.checked) record("rating:" + aspect.key, v); });
        label.appendChild(input);
        label.appendChild(el("span", {"class": "num"}, String(v + FIRST)));
        label.appendChild(el("span", {id: id + "-text", "class": "level"}, level));
        choices.appendChild(label);
      });
      fieldset.appendChild(choices);
      box.appendChild(fieldset);
    });
    var flags = $("flags");
    if (!FLAGS.length) $("flags-box").hidden = true;
    FLAGS.forEach(function (flag, fi) {
      var label = el("label", {"class": "check"});
      var input = el("input", {type: "checkbox", id: "flag-" + fi});
      input.addEventListener("change", function () { record("flag:" + flag.key, input.checked); });
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + flag.label));
      flags.appendChild(label);
    });
    $("comment").addEventListener("input", function () {
      record("comment", wellFormed($("comment").value).slice(0, 10000));
    });
  }

  // ---------------------------------------------------------------- screens
  function showScreen(id) {
    ["start-screen", "panel-screen", "done-screen"].forEach(function (s) { $(s).hidden = s !== id; });
  }

  function updateProgress() {
    var total = state.order.length, answered = answeredCount();
    var bar = $("progress");
    bar.max = total;
    bar.value = answered;
    if (state.pos < total) {
      $("progress-text").textContent = "Panel " + (state.pos + 1) + " of " + total + ", " +
        answered + " fully rated";
    }
  }

  function showPanel(pos) {
    if (state.pos < state.order.length && state.pos !== pos) flushTime();
    state.pos = pos;
    enteredAt = performance.now();
    if (pos >= state.order.length) { showDone(); return; }
    state.seen[String(pos)] = true;
    var entry = state.order[pos], panel = DATA.panels[entry.p], answers = answersAt(pos);
    $("prompt").textContent = panel.text;
    var grid = $("grid");
    grid.textContent = "";
    entry.images.forEach(function (token, i) {
      var alt = "Image " + (i + 1) + " of " + entry.images.length;
      var button = el("button", {type: "button", "class": "thumb", "aria-label": "Enlarge image " + (i + 1)});
      button.appendChild(el("img", {src: DATA.images[token], alt: alt, decoding: "async"}));
      button.addEventListener("click", function () { zoom(DATA.images[token], alt); });
      grid.appendChild(button);
    });
    ASPECTS.forEach(function (aspect, ai) {
      var value = answers.ratings[aspect.key];
      aspect.levels.forEach(function (level, v) { $("rate-" + ai + "-" + v).checked = value === v; });
    });
    FLAGS.forEach(function (flag, fi) { $("flag-" + fi).checked = answers.flags[flag.key] === true; });
    $("comment").value = answers.comment;
    $("back").disabled = pos === 0;
    showScreen("panel-screen");
    updateProgress();
    save();
  }

  function showDone() {
    showScreen("done-screen");
    var total = state.order.length, answered = answeredCount();
    $("progress").value = answered;
    $("done-text").textContent = answered === total
      ? "You have rated all " + total + " panels."
      : "You have fully rated " + answered + " of " + total + " panels; you can go back to the others.";
    $("first-unanswered").hidden = answered === total;
    save();
    postResponse();
    document.querySelector("#done-screen .download").focus();
  }

  function next() { showPanel(Math.min(state.pos + 1, state.order.length)); focusFirstAspect(); }
  function back() { if (state.pos > 0) { showPanel(state.pos - 1); focusFirstAspect(); } }

  function focusAspect(ai) {
    var checked = document.querySelector('input[name="rate-' + ai + '"]:checked');
    (checked || $("rate-" + ai + "-0")).focus();
  }
  function focusFirstAspect() { if (state.pos < state.order.length && ASPECTS.length) focusAspect(0); }

  function zoom(src, alt) {
    var dialog = $("zoom");
    $("zoom-img").src = src;
    $("zoom-img").alt = alt + ", enlarged";
    if (dialog.showModal) dialog.showModal(); else dialog.setAttribute("open", "");
    $("zoom-close").focus();
  }

  function start() {
    var error = $("start-error"), rater = normaliseId($("rater-id").value);
    var problems = [];
    if (!rater) problems.push("Enter your rater ID.");
    var profile = {};
    DATA.profile.forEach(function (field, i) {
      var value = wellFormed($("profile-" + i).value.trim());
      if (field.required && !value) problems.push("Answer: " + field.label + ".");
      profile[field.key] = value || null;
    });
    if (DATA.consent && !$("consent").checked) problems.push("Tick the consent box to take part.");
    if (problems.length) { error.textContent = problems.join(" "); return; }
    error.textContent = "";
    var saved = load(rater);
    if (saved) { resume(saved); return; }
    state = {version: 1, rater: rater, profile: profile, started: now(), updated: now(),
             completed: null, order: raterPlan(rater), pos: 0, answers: {}, seconds: {},
             seen: {}, events: []};
    recomputeHeads();
    showPanel(0);
    focusFirstAspect();
  }

  function resume(saved) {
    state = saved;
    recomputeHeads();
    showPanel(Math.min(state.pos, state.order.length));
    focusFirstAspect();
  }

  /** Back to an empty start screen; this rater's answers stay saved under their id. */
  function switchRater() {
    save();
    try { window.localStorage.removeItem(LAST_RATER); } catch (e) { /* nothing to forget */ }
    state = null;
    $("start-form").reset();  // empties the rater ID too, even one taken from ?rater=
    showScreen("start-screen");
    $("rater-id").focus();
  }

  // ---------------------------------------------------------------- keyboard
  function currentAspect(target) {
    var fieldset = target && target.closest ? target.closest("fieldset.aspect") : null;
    if (fieldset) return Number(fieldset.getAttribute("data-aspect"));
    var answers = answersAt(state.pos);
    for (var i = 0; i < ASPECTS.length; i++) {
      if (typeof answers.ratings[ASPECTS[i].key] !== "number") return i;
    }
    return 0;
  }

  function onKey(e) {
    if (!state || $("panel-screen").hidden || $("zoom").open) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target, tag = t && t.tagName;
    var typing = tag === "TEXTAREA" || tag === "SELECT" || (tag === "INPUT" && t.type === "text");
    if (typing) return;
    if (/^[0-9]$/.test(e.key) && ASPECTS.length) {
      var ai = currentAspect(t), v = Number(e.key) - FIRST;
      if (v < 0 || v >= ASPECTS[ai].levels.length) return;
      e.preventDefault();
      $("rate-" + ai + "-" + v).checked = true;
      record("rating:" + ASPECTS[ai].key, v);
      if (ai + 1 < ASPECTS.length) focusAspect(ai + 1); else $("next").focus();
    } else if ((e.key === "Enter" && tag !== "BUTTON" && tag !== "A") || e.key === "ArrowRight") {
      e.preventDefault();
      next();
    } else if (e.key === "ArrowLeft") {
      e.preventDefault();
      back();
    }
  }

  // ---------------------------------------------------------------- wiring
  function init() {
    buildStart();
    buildRatingForm();
    $("next").addEventListener("click", next);
    $("back").addEventListener("click", back);
    $("done-back").addEventListener("click", back);
    $("first-unanswered").addEventListener("click", function () {
      for (var i = 0; i < state.order.length; i++) {
        if (!positionComplete(i)) { showPanel(i); focusFirstAspect(); return; }
      }
    });
    Array.prototype.forEach.call(document.querySelectorAll(".download"), function (b) {
      b.addEventListener("click", download);
    });
    Array.prototype.forEach.call(document.querySelectorAll(".switch-rater"), function (b) {
      b.addEventListener("click", switchRater);
    });
    $("zoom-close").addEventListener("click", function () { $("zoom").close(); });
    $("zoom").addEventListener("click", function (e) { if (e.target === $("zoom")) $("zoom").close(); });
    document.addEventListener("keydown", onKey, true);
    window.addEventListener("pagehide", function () { if (state) save(); });
    document.addEventListener("visibilitychange", function () { if (state) save(); });

    try {
      var probe = STORE_PREFIX + "probe";
      window.localStorage.setItem(probe, "1");
      window.localStorage.removeItem(probe);
    } catch (e) {
      storageWarn();
    }
    var asked = new URLSearchParams(window.location.search).get("rater");
    asked = asked === null ? null : normaliseId(asked).slice(0, 200);
    var candidate = asked || storageGet(LAST_RATER);
    var saved = candidate ? load(candidate) : null;
    if (saved) { resume(saved); return; }
    if (asked) $("rater-id").value = asked;
    showScreen("start-screen");
  }

  init();
}());
