/* Survey page: plain JavaScript, no framework. It makes no request unless the study
   sets a POST address. Every answer is saved in this browser at once (storage.js) and
   sent where the study says (transport.js); the screens are built of the task widgets
   (widgets.js); the response file carries a SHA-256 hash chain over the answers
   (core.js; glidemed/responses/chain.py). */
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("survey-data").textContent);
  var RESPONSE_SCHEMA = "glidemed-response/1";
  var CHAIN_ALGORITHM = "sha256-chain/2";
  var BLOCKS = DATA.blocks;           // the survey's tasks in order, each with its panels
  var BLOCK_OF_PANEL = [];            // page panel index -> block index
  BLOCKS.forEach(function (block, b) {
    for (var i = 0; i < block.panels; i++) BLOCK_OF_PANEL.push(b);
  });
  // The current block's scales and flags (set by useBlock before a panel is shown).
  var BLOCK = BLOCKS[0], ASPECTS = BLOCK.aspects, FLAGS = BLOCK.flags;
  var FIRST = BLOCK.first_value;  // the number shown for a scale's first level

  // ---------------------------------------------------------------- core (js/core.js)
  var core = GlidemedCore;
  var sha256hex = core.sha256hex, chainStep = core.chainStep;
  var wellFormed = core.wellFormed, normaliseId = core.normaliseId;
  function chainStart(rater) { return core.chainStart(DATA.build_hash, rater); }
  function raterBlock() { return {id: state.rater, profile: state.profile}; }
  function raterPlan(rater) {
    var offset = 0;
    return core.blocksPlan(DATA.build_hash, rater, BLOCKS.map(function (block) {
      var panels = DATA.panels.slice(offset, offset + block.panels);
      offset += block.panels;
      return {panelImages: panels.map(function (p) { return p.images; }),
              imagesPerPanel: block.images_per_panel, repeatPanels: DATA.repeat_panels,
              groups: block.groups, perGroup: block.per_prompt};
    }));
  }
  function blockAt(pos) { return BLOCK_OF_PANEL[state.order[pos].p]; }

  /** glidemed's own text of key in the survey's language, {fields} filled from values. */
  function text(key, values) { return core.format(DATA.ui[key], values || {}); }
  var WHO = DATA.contact || text("the_investigator");

  // ---------------------------------------------------------------- storage (js/storage.js)
  var storage = GlidemedStorage("glidemed:" + DATA.build_hash + ":", function (ok) {
    var box = document.getElementById("storage-warning");
    box.textContent = ok ? "" : text("storage_failed");
    box.hidden = ok;
  });

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
    storage.saveRater(state);
    transport.schedule();
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
    transport.changed();
    save();
    updateProgress();
  }

  function positionComplete(pos) {
    var answers = state.answers[String(pos)];
    return !!answers && BLOCKS[blockAt(pos)].aspects.every(function (a) {
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
      var block = BLOCKS[blockAt(pos)];
      block.aspects.forEach(function (a) {
        var v = answers.ratings[a.key];
        ratings[a.key] = typeof v === "number" ? v : null;
      });
      block.flags.forEach(function (f) { flags[f.key] = answers.flags[f.key] === true; });
      var panel = {token: DATA.panels[entry.p].token, position: pos, repeat: entry.repeat,
                   images: entry.images.slice(), ratings: ratings, flags: flags,
                   comment: answers.comment,
                   seconds: Math.round((state.seconds[String(pos)] || 0) * 100) / 100};
      var failed = (state.failures || {})[String(pos)], tools = (state.tools || {})[String(pos)];
      if (failed) panel.image_failures = failed;
      if (tools) panel.viewer = tools;
      panels.push(panel);
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

  // ---------------------------------------------------------------- transport (js/transport.js)
  function hasRating() {
    return state.events.some(function (ev) { return ev.field.indexOf("rating:") === 0; });
  }
  var transport = GlidemedTransport({
    server: DATA.server, postUrl: DATA.post_url, storage: storage, text: text, who: WHO,
    current: function () {
      return state && {rater: state.rater, head: heads.head, postedHead: state.postedHead,
                       hasRating: hasRating(), atEnd: state.pos >= state.order.length};
    },
    response: buildResponse,
    sent: function (rater, head) { if (state && state.rater === rater) { state.postedHead = head; save(); } }
  });

  // ---------------------------------------------------------------- page building (js/widgets.js)
  var widgets = GlidemedWidgets, el = widgets.el;
  widgets.useTexts(text);
  function $(id) { return document.getElementById(id); }

  function buildStart() {
    document.title = DATA.title;
    $("title").textContent = DATA.title;
    $("instructions").textContent = [DATA.instructions, BLOCKS[0].instructions].filter(Boolean).join("\n\n");
    widgets.scales($("scales"), BLOCKS[0]);
    var panels = raterPlan("").length, minutes = Math.max(1, Math.round(panels * DATA.seconds_per_panel / 60));
    $("effort").textContent = text("effort", {panels: panels, minutes: minutes,
                                              seconds: DATA.seconds_per_panel});
    if (DATA.contact) {
      $("start-contact").hidden = false;
      $("start-contact").textContent = text("contact", {contact: DATA.contact});
    }
    if (DATA.examples.length) {
      var examples = $("examples");
      examples.appendChild(el("h3", {}, text("examples")));
      var row = el("div", {"class": "examples"});
      DATA.examples.forEach(function (ex) {
        var aspect = ASPECTS.filter(function (a) { return a.key === ex.aspect; })[0];
        var figure = el("figure");
        var label = aspect.label + " " + ex.level + (ex.caption ? ": " + ex.caption : "");
        figure.appendChild(el("img", {src: DATA.images[ex.image], alt: text("example", {label: label})}));
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
      box.appendChild(el("label", {"for": id}, field.required ? text("required", {label: field.label}) : field.label));
      var input;
      if (field.choices.length) {
        input = el("select", {id: id});
        input.appendChild(el("option", {value: ""}, text("choose")));
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

  /** Make block b the current one: its scales, flags and keys in the rating form. */
  function useBlock(b) {
    if (BLOCK === BLOCKS[b] && $("aspects").childNodes.length) return;
    BLOCK = BLOCKS[b];
    ASPECTS = BLOCK.aspects;
    FLAGS = BLOCK.flags;
    FIRST = BLOCK.first_value;
    widgets.answerForm($("aspects"), $("flags"), BLOCK, record);
    $("flags-box").hidden = !FLAGS.length;
    $("panel-heading").textContent = BLOCK.heading || text("target_text");
    var top = Math.min(9, FIRST + Math.max.apply(null, ASPECTS.map(function (a) { return a.levels.length; })) - 1);
    $("key-range").textContent = FIRST + "\u2013" + top;
  }

  // ---------------------------------------------------------------- screens
  function showScreen(id) {
    ["start-screen", "block-screen", "panel-screen", "done-screen"].forEach(function (s) { $(s).hidden = s !== id; });
  }

  function updateProgress() {
    var total = state.order.length, answered = answeredCount();
    var bar = $("progress");
    bar.max = total;
    bar.value = answered;
    if (state.pos < total) {
      $("progress-text").textContent = text("progress_text", {pos: state.pos + 1, total: total,
                                                              answered: answered, left: timeLeft(total - answered)});
      var every = DATA.break_every, note = $("break-note");
      note.hidden = !(every > 0 && state.pos > 0 && state.pos % every === 0);
      note.textContent = note.hidden ? "" : text("break", {count: state.pos});
    }
  }

  /** The time left at this rater's own pace (the study's estimate until a few are done). */
  function timeLeft(remaining) {
    var done = 0, spent = 0;
    Object.keys(state.seconds).forEach(function (k) { if (positionComplete(Number(k))) { done++; spent += state.seconds[k]; } });
    var pace = done >= 3 ? spent / done : DATA.seconds_per_panel;
    var minutes = Math.round(remaining * pace / 60);
    return minutes < 1 ? text("under_a_minute") : text("minutes_left", {minutes: minutes});
  }

  // ---------------------------------------------------------------- images of the panel
  // A panel is rated only once all its images show: while they load the scales wait, and
  // keys pressed meanwhile (ratings, Next) are kept in order and applied panel by panel
  // as the images show; an image that fails stops the panel, says so, and offers to load
  // it again or to skip the panel for now.
  var images = {ready: false, failed: 0};
  var queue = [];  // actions waiting for the shown panel's images

  function whenReady(action) {
    if (images.failed) return;  // the panel cannot be rated: dropped
    queue.push(action);
    drain();
  }
  /** The panel cannot be rated: its waiting ratings are dropped; a Next pressed after them
      still moves on (later keys wait for the next panel). */
  function dropQueue() {
    var at = queue.indexOf(advance);
    queue = at < 0 ? [] : queue.slice(at + 1);
    if (at >= 0) advance();
  }
  function drain() {
    while (queue.length && images.ready && onPanel()) queue.shift()();
  }

  function imagesState(pos, counts) {
    if (pos !== state.pos) return;  // a panel no longer shown
    var firstFailure = counts.failed && !images.failed;
    if (firstFailure) {
      var failures = state.failures || (state.failures = {});
      failures[String(pos)] = (failures[String(pos)] || 0) + counts.failed;
      save();
    }
    images.failed = counts.failed;
    images.ready = counts.loaded === counts.total;
    $("grid").setAttribute("aria-busy", images.ready || images.failed ? "false" : "true");
    setRatable(images.ready);
    $("image-status").hidden = $("image-actions").hidden = !counts.failed;
    if (firstFailure) dropQueue();
    $("image-status").textContent = counts.failed ? text("images_failed", counts) : "";
    drain();
  }

  function setRatable(on) {
    Array.prototype.forEach.call(document.querySelectorAll("#aspects fieldset, #flags-box"),
                                 function (box) { box.disabled = !on; });
  }

  function showImages(pos) {
    var entry = state.order[pos];
    images = {ready: false, failed: 0};
    setRatable(false);
    $("grid").setAttribute("aria-busy", "true");
    widgets.imageGrid($("grid"), entry.images, BLOCK, DATA.images, openViewer, DATA.max_upscale,
                      function (counts) { imagesState(pos, counts); });
    if (pos + 1 < state.order.length) {
      widgets.preload(state.order[pos + 1].images.map(function (t) { return DATA.images[t]; }));
    }
  }

  function showPanel(pos) {
    if (state.pos < state.order.length && state.pos !== pos) flushTime();
    state.pos = pos;
    enteredAt = performance.now();
    if (pos >= state.order.length) { showDone(); return; }
    var b = blockAt(pos);
    if (b > 0 && !(state.intros || {})[b]) { showBlockIntro(b); return; }
    useBlock(b);
    state.seen[String(pos)] = true;
    var entry = state.order[pos], panel = DATA.panels[entry.p], answers = answersAt(pos);
    $("prompt").textContent = panel.text;
    $("missing-note").hidden = true;
    widgets.showAnswers(BLOCK, answers);
    showImages(pos);
    $("comment").value = answers.comment;
    $("back").disabled = pos === 0;
    showScreen("panel-screen");
    window.scrollTo(0, 0);  // every panel opens at its top
    $("panel-heading").focus({preventScroll: true});  // until its first scale can take focus
    updateProgress();
    save();
  }

  /** The instructions screen of block b (> 0), before its first panel. */
  function showBlockIntro(b) {
    var block = BLOCKS[b];
    $("block-heading").textContent = text("part", {part: b + 1, parts: BLOCKS.length});
    $("block-instructions").textContent = block.instructions;
    widgets.scales($("block-scales"), block);
    showScreen("block-screen");
    updateProgress();
    $("block-continue").focus();
  }

  function continueBlock() {
    var b = blockAt(state.pos);
    state.intros = state.intros || {};
    state.intros[b] = true;
    enteredAt = performance.now();  // reading the instructions is not time on the panel
    save();
    showPanel(state.pos);
    focusFirstAspect();
  }

  function showDone() {
    showScreen("done-screen");
    var total = state.order.length, answered = answeredCount();
    $("progress").value = answered;
    $("done-text").textContent = text(answered === total ? "all_rated" : "some_rated",
                                      {answered: answered, total: total});
    $("first-unanswered").hidden = answered === total;
    save();
    transport.sendNow();
    document.querySelector("#done-screen .download").focus();
  }

  /** Next panel. Over a panel with a scale not rated, Next first asks (once per visit);
      with require_answers it waits for every scale. A panel whose images did not load
      is passed over as it is. */
  function next() {
    if (onPanel() && !images.failed) whenReady(advance); else advance();
  }
  function advance() {
    var missing = state.pos < state.order.length && !images.failed ? missingScales(state.pos) : [];
    var note = $("missing-note");
    if (missing.length && (DATA.require_answers || note.hidden)) {
      note.hidden = false;
      note.textContent = text(DATA.require_answers ? "not_rated_wait" : "not_rated_ask",
                              {scales: missing.join(text("and"))});
      return;
    }
    showPanel(Math.min(state.pos + 1, state.order.length));
    focusFirstAspect();
  }
  function missingScales(pos) {
    var answers = answersAt(pos);
    return BLOCKS[blockAt(pos)].aspects.filter(function (a) {
      return typeof answers.ratings[a.key] !== "number";
    }).map(function (a) { return a.label; });
  }
  function onPanel() { return state.pos < state.order.length && !$("panel-screen").hidden; }
  function back() { if (state.pos > 0) { showPanel(state.pos - 1); focusFirstAspect(); } }

  function focusAspect(ai) {
    var checked = document.querySelector('input[name="rate-' + ai + '"]:checked');
    (checked || $("rate-" + ai + "-0")).focus({preventScroll: true});
  }
  function focusFirstAspect() {  // before any key already waiting for this panel
    if (images.failed) return;
    queue.unshift(function () { if (ASPECTS.length) focusAspect(0); });
    drain();
  }

  // ---------------------------------------------------------------- the viewer (js/viewer.js)
  var viewer = GlidemedViewer($("viewer"), function (tool) {
    if (!state || state.pos >= state.order.length) return;
    var tools = state.tools || (state.tools = {}), used = tools[String(state.pos)] || (tools[String(state.pos)] = {});
    used[tool] = (used[tool] || 0) + 1;
    save();
  }, text);
  function openViewer(i, items) {
    var entry = state.order[state.pos];
    viewer.open(items || entry.images.map(function (t, k) {
      return {src: DATA.images[t], alt: BLOCK.image_labels[k] ? text("side_image", {side: BLOCK.image_labels[k]})
                                                               : text("image_of", {number: k + 1, total: entry.images.length})};
    }), i, DATA.panels[entry.p].text);
  }

  function start() {
    var error = $("start-error"), rater = normaliseId($("rater-id").value);
    var problems = [];
    if (!rater) problems.push(text("enter_rater_id"));
    var profile = {};
    DATA.profile.forEach(function (field, i) {
      var value = wellFormed($("profile-" + i).value.trim());
      if (field.required && !value) problems.push(text("answer_field", {label: field.label}));
      profile[field.key] = value || null;
    });
    if (DATA.consent && !$("consent").checked) problems.push(text("tick_consent"));
    var invalid = [[$("rater-id"), !rater], [$("consent"), DATA.consent && !$("consent").checked]];
    DATA.profile.forEach(function (field, i) {
      invalid.push([$("profile-" + i), field.required && !profile[field.key]]);
    });
    invalid.forEach(function (pair) { pair[0].setAttribute("aria-invalid", pair[1] ? "true" : "false"); });
    if (problems.length) {
      error.textContent = problems.join(" ");
      invalid.filter(function (pair) { return pair[1]; })[0][0].focus();
      return;
    }
    error.textContent = "";
    var saved = storage.loadRater(rater);
    if (saved) { resume(saved); return; }
    state = {version: 1, rater: rater, profile: profile, started: now(), updated: now(),
             completed: null, order: raterPlan(rater), pos: 0, answers: {}, seconds: {},
             seen: {}, intros: {}, events: []};
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
    storage.forgetLastRater();
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
    if (!state || $("panel-screen").hidden) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (viewer.isOpen() && (viewer.key(e) || !/^[0-9]$/.test(e.key))) return;  // digits still rate
    if (e.key === "v" && !viewer.isOpen()) { e.preventDefault(); whenReady(function () { openViewer(0); }); return; }
    var t = e.target, tag = t && t.tagName;
    var typing = tag === "TEXTAREA" || tag === "SELECT" || (tag === "INPUT" && t.type === "text");
    if (typing) return;
    if (tag === "INPUT" && t.type === "radio" && /^Arrow/.test(e.key)) return;  // moves the choice
    if (/^[0-9]$/.test(e.key) && ASPECTS.length) {
      var v = Number(e.key) - FIRST;
      if (v < 0 || v >= Math.max.apply(null, ASPECTS.map(function (a) { return a.levels.length; }))) return;
      e.preventDefault();
      whenReady(function () {  // a key pressed while the images load applies once they show
        var ai = currentAspect(document.activeElement);
        if (v >= ASPECTS[ai].levels.length) return;
        $("rate-" + ai + "-" + v).checked = true;
        record("rating:" + ASPECTS[ai].key, v);
        if (ai + 1 < ASPECTS.length) focusAspect(ai + 1); else $("next").focus({preventScroll: true});
      });
    } else if ((e.key === "Enter" && tag !== "BUTTON" && tag !== "A") || e.key === "ArrowRight") {
      e.preventDefault();
      next();
    } else if (e.key === "ArrowLeft") {
      e.preventDefault();
      back();
    }
  }

  // ---------------------------------------------------------------- theme and messages
  /** The rater's choice, else the study's (auto: the browser's preference). */
  function applyTheme() {
    var theme = storage.setting("theme") || DATA.theme;
    if (theme === "auto") {
      theme = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
    }
    document.documentElement.dataset.theme = theme;
    document.documentElement.classList.toggle("pixelated", DATA.scaling === "pixelated");
    $("theme-toggle").setAttribute("aria-pressed", theme === "dark" ? "true" : "false");
  }

  /** What the end page asks, in the way this survey returns answers. */
  function sendRequest() {
    return text(DATA.server ? "send_served" : DATA.post_url ? "send_post" : "send_file", {who: WHO});
  }

  // ---------------------------------------------------------------- wiring
  function init() {
    buildStart();
    useBlock(0);
    $("comment").addEventListener("input", function () {
      record("comment", wellFormed($("comment").value).slice(0, 10000));
    });
    $("block-continue").addEventListener("click", continueBlock);
    $("image-retry").addEventListener("click", function () { showImages(state.pos); focusFirstAspect(); });
    $("image-skip").addEventListener("click", function () {
      showPanel(Math.min(state.pos + 1, state.order.length));
      focusFirstAspect();
    });
    $("theme-toggle").addEventListener("click", function () {
      storage.putSetting("theme", document.documentElement.dataset.theme === "dark" ? "light" : "dark");
      applyTheme();
    });
    applyTheme();
    if (window.matchMedia) window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", applyTheme);
    $("send-request").textContent = sendRequest();
    $("block-back").addEventListener("click", back);
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
    document.addEventListener("keydown", onKey, true);
    window.addEventListener("pagehide", function () { if (state) save(); });
    document.addEventListener("visibilitychange", function () { if (state) save(); });

    storage.probe();
    var asked = new URLSearchParams(window.location.search).get("rater");
    asked = asked === null ? null : normaliseId(asked).slice(0, 200);
    var candidate = asked || storage.lastRater();
    var saved = candidate ? storage.loadRater(candidate) : null;
    if (saved) { resume(saved); return; }
    if (asked) $("rater-id").value = asked;
    showScreen("start-screen");
  }

  init();
}());
