/* glidemed survey widgets: what a task's screen is made of. A block (one task) gives its
   scales (aspects, levels, the first level's number), flags and image labels; the same
   widgets show a rating panel, a Turing screen and a side-by-side pair. */
(function (root) {
  "use strict";

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

  /** A panel's images, in the rater's order: labelled by the block (e.g. Left, Right) or
      numbered; sources maps image tokens to src; onZoom(src, alt) enlarges one. */
  function imageGrid(grid, tokens, block, sources, onZoom) {
    grid.textContent = "";
    grid.className = "grid" + (block.image_labels.length ? " labelled" : "");
    tokens.forEach(function (token, i) {
      var name = block.image_labels[i] || "Image " + (i + 1);
      var alt = block.image_labels[i] ? name + " image" : name + " of " + tokens.length;
      var figure = el("figure", {"class": "thumb-box"});
      var button = el("button", {type: "button", "class": "thumb", "aria-label": "Enlarge " + alt.toLowerCase()});
      button.appendChild(el("img", {src: sources[token], alt: alt, decoding: "async"}));
      button.addEventListener("click", function () { onZoom(sources[token], alt); });
      figure.appendChild(button);
      if (block.image_labels[i]) figure.appendChild(el("figcaption", {"class": "side"}, name));
      grid.appendChild(figure);
    });
  }

  root.GlidemedWidgets = {el: el, scales: scales, answerForm: answerForm,
                          showAnswers: showAnswers, imageGrid: imageGrid};
}(typeof self !== "undefined" ? self : this));
