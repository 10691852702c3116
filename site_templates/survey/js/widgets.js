/* glidemed survey widgets: what a task's screen is made of. A block (one task) gives its
   scales (aspects, levels, the first level's number), flags and image labels; the same
   widgets show a rating panel, a Turing screen and a side-by-side pair. */
(function (root) {
  "use strict";

  var text = function (key) { return key; };  // the page's texts (useTexts)

  /** An element with attributes and text content (never HTML). */
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** A block's scales as lists (the start screen, a block's instructions screen). */
  function scales(box, block) {
    box.textContent = "";
    block.aspects.forEach(function (aspect) {
      box.appendChild(el("h3", {}, aspect.label));
      if (aspect.question) box.appendChild(el("p", {}, aspect.question));
      var list = el("ol", {start: String(block.first_value), "class": "scale"});
      aspect.levels.forEach(function (level, i) {
        list.appendChild(el("li", {}, (i + block.first_value) + " \u2013 " + level));
      });
      box.appendChild(list);
    });
  }

  /** The block's answer form: a radio group per aspect (ids rate-<aspect>-<level>) and a
      checkbox per flag (flag-<i>); onAnswer(field, value) with field "rating:<key>" or
      "flag:<key>". */
  function answerForm(aspectsBox, flagsBox, block, onAnswer) {
    var first = block.first_value;
    aspectsBox.textContent = "";
    flagsBox.textContent = "";
    block.aspects.forEach(function (aspect, ai) {
      var fieldset = el("fieldset", {"class": "aspect", "data-aspect": String(ai)});
      fieldset.appendChild(el("legend", {}, aspect.label));
      if (aspect.question) fieldset.appendChild(el("p", {"class": "question"}, aspect.question));
      var choices = el("div", {"class": "choices"});
      aspect.levels.forEach(function (level, v) {
        var id = "rate-" + ai + "-" + v;
        var label = el("label", {"for": id, "class": "choice"});
        var input = el("input", {type: "radio", id: id, name: "rate-" + ai, value: String(v),
                                 "aria-label": aspect.label + " " + (v + first),
                                 "aria-describedby": id + "-text"});
        input.addEventListener("change", function () { if (input.checked) onAnswer("rating:" + aspect.key, v); });
        label.appendChild(input);
        label.appendChild(el("span", {"class": "num"}, String(v + first)));
        label.appendChild(el("span", {id: id + "-text", "class": "level"}, level));
        choices.appendChild(label);
      });
      fieldset.appendChild(choices);
      aspectsBox.appendChild(fieldset);
    });
    block.flags.forEach(function (flag, fi) {
      var label = el("label", {"class": "check"});
      var input = el("input", {type: "checkbox", id: "flag-" + fi});
      input.addEventListener("change", function () { onAnswer("flag:" + flag.key, input.checked); });
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + flag.label));
      flagsBox.appendChild(label);
    });
  }

  /** Set the answer form to a panel's answers ({ratings, flags}). */
  function showAnswers(block, answers) {
    block.aspects.forEach(function (aspect, ai) {
      var value = answers.ratings[aspect.key];
      aspect.levels.forEach(function (level, v) {
        document.getElementById("rate-" + ai + "-" + v).checked = value === v;
      });
    });
    block.flags.forEach(function (flag, fi) {
      document.getElementById("flag-" + fi).checked = answers.flags[flag.key] === true;
    });
  }

  /** A panel's images, in the rater's order: labelled by the block (e.g. Left, Right, side
      by side) or numbered in a near-square grid. sources maps image tokens to src;
      onOpen(i, items) opens image i of items [{src, alt}] in the viewer; maxUpscale caps the shown size at that many times the
      image's own pixels; onState({loaded, failed, total}) is told as each image loads or
      fails to. */
  function imageGrid(grid, tokens, block, sources, onOpen, maxUpscale, onState) {
    var n = tokens.length, labelled = block.image_labels.length > 0;
    var cols = labelled ? n : Math.ceil(Math.sqrt(n)), rows = Math.ceil(n / cols);
    var counts = {loaded: 0, failed: 0, total: n}, items = [];
    grid.textContent = "";
    grid.className = "grid" + (labelled ? " labelled" : "");
    grid.style.setProperty("--cols", String(cols));
    grid.style.setProperty("--rows", String(rows));
    tokens.forEach(function (token, i) {
      var name = block.image_labels[i] || text("image_name", {number: i + 1});
      var alt = labelled ? text("side_image", {side: name}) : text("image_of", {number: i + 1, total: n});
      items.push({src: sources[token], alt: alt});
      var figure = el("figure", {"class": "thumb-box"});
      var button = el("button", {type: "button", "class": "thumb", "aria-label": text("open_in_viewer", {image: alt})});
      var img = el("img", {alt: alt});
      img.addEventListener("load", function () {
        var done = function () {
          img.style.maxWidth = img.naturalWidth * maxUpscale + "px";
          img.style.maxHeight = img.naturalHeight * maxUpscale + "px";
          counts.loaded++;
          onState(counts);
        };
        (img.decode ? img.decode() : Promise.resolve()).then(done, done);
      });
      img.addEventListener("error", function () {
        figure.classList.add("failed");
        counts.failed++;
        onState(counts);
      });
      img.src = sources[token];
      button.appendChild(img);
      button.addEventListener("click", function () { onOpen(i, items); });
      figure.appendChild(button);
      if (labelled) figure.appendChild(el("figcaption", {"class": "side-label"}, name));
      grid.appendChild(figure);
    });
  }

  /** Start loading (and decoding) images before they are shown. */
  function preload(sources) {
    sources.forEach(function (src) {
      var img = new Image();
      img.src = src;
      if (img.decode) img.decode().catch(function () { /* shown, and reported, when its panel opens */ });
    });
  }

  root.GlidemedWidgets = {useTexts: function (fn) { text = fn; }, el: el, scales: scales, answerForm: answerForm,
                          showAnswers: showAnswers, imageGrid: imageGrid, preload: preload};
}(typeof self !== "undefined" ? self : this));
