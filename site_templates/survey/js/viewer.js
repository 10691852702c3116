/* glidemed survey viewer: one of a panel's images, large, with the reading tools raters
   know from clinical viewers. Wheel, pinch and + / - zoom (up to 16 times the image's own
   pixels) around the pointer; drag pans; "o" shows image pixels 1:1 on device pixels,
   "f" fits; b / B and c / C lower and raise brightness and contrast (window and level);
   "r" resets; left and right arrows step through the panel's images; the prompt stays
   in view. Every adjustment is on the display only and the same for every image: the
   files are untouched. Which tools were used is counted for the response file. */
(function (root) {
  "use strict";

  var MAX_ZOOM = 16, STEP = 1.25, LEVEL_STEP = 0.1;

  /** dialog: the viewer's <dialog>; onUse(tool) counts a tool used ("zoom", "window",
      "one_to_one"); text(key, values) gives the page's texts. */
  function GlidemedViewer(dialog, onUse, text) {
    var stage = dialog.querySelector(".viewer-stage"), img = dialog.querySelector(".viewer-img");
    var caption = dialog.querySelector(".viewer-caption"), prompt = dialog.querySelector(".viewer-prompt");
    var view = {scale: 1, x: 0, y: 0, brightness: 1, contrast: 1};
    var images = [], index = 0, pointers = {}, pinch = null, drag = null;

    function fitScale() {
      var box = stage.getBoundingClientRect();
      return Math.min(box.width / img.naturalWidth, box.height / img.naturalHeight) || 1;
    }
    function draw() {
      img.style.transform = "translate(" + view.x + "px, " + view.y + "px) scale(" + view.scale + ")";
      img.style.filter = "brightness(" + view.brightness.toFixed(2) + ") contrast(" + view.contrast.toFixed(2) + ")";
      dialog.querySelector(".viewer-zoom").textContent = Math.round(view.scale * 100) + "%";
    }
    /** Centre the image at a scale. */
    function place(scale) {
      var box = stage.getBoundingClientRect();
      view.scale = scale;
      view.x = (box.width - img.naturalWidth * scale) / 2;
      view.y = (box.height - img.naturalHeight * scale) / 2;
      draw();
    }
    /** Zoom by factor around a point of the stage (its centre by default). */
    function zoomAt(factor, px, py) {
      var box = stage.getBoundingClientRect();
      if (px === undefined) { px = box.width / 2; py = box.height / 2; }
      var scale = Math.max(fitScale() / 4, Math.min(MAX_ZOOM, view.scale * factor));
      view.x = px - (px - view.x) * scale / view.scale;
      view.y = py - (py - view.y) * scale / view.scale;
      view.scale = scale;
      draw();
      onUse("zoom");
    }
    function fit() { place(fitScale()); }
    function oneToOne() { place(1 / (window.devicePixelRatio || 1)); onUse("one_to_one"); }
    function level(kind, delta) {
      view[kind] = Math.max(0.2, Math.min(4, view[kind] + delta));
      draw();
      onUse("window");
    }
    function reset() { view.brightness = view.contrast = 1; fit(); }
    function show(i) {
      index = (i + images.length) % images.length;
      var item = images[index];
      caption.textContent = item.alt;
      img.alt = text("in_viewer", {image: item.alt});
      img.onload = function () { view.brightness = view.contrast = 1; fit(); };
      img.src = item.src;
      if (img.complete && img.naturalWidth) img.onload();
    }

    /** Open on image i of items [{src, alt}], with the panel's prompt in view. */
    function open(items, i, promptText) {
      images = items;
      prompt.textContent = promptText;
      if (dialog.showModal) dialog.showModal(); else dialog.setAttribute("open", "");
      show(i);
      dialog.querySelector(".viewer-close").focus();
    }
    function close() { if (dialog.open) dialog.close(); }

    /** A key pressed while the viewer is open; true when it was the viewer's. */
    function key(e) {
      var actions = {
        "+": function () { zoomAt(STEP); }, "=": function () { zoomAt(STEP); },
        "-": function () { zoomAt(1 / STEP); }, "o": oneToOne, "f": fit, "r": reset,
        "b": function () { level("brightness", -LEVEL_STEP); }, "B": function () { level("brightness", LEVEL_STEP); },
        "c": function () { level("contrast", -LEVEL_STEP); }, "C": function () { level("contrast", LEVEL_STEP); },
        "ArrowLeft": function () { show(index - 1); }, "ArrowRight": function () { show(index + 1); }
      };
      if (!actions[e.key]) return false;
      e.preventDefault();
      actions[e.key]();
      return true;
    }

    stage.addEventListener("wheel", function (e) {
      e.preventDefault();
      var box = stage.getBoundingClientRect();
      zoomAt(e.deltaY < 0 ? STEP : 1 / STEP, e.clientX - box.left, e.clientY - box.top);
    }, {passive: false});
    stage.addEventListener("pointerdown", function (e) {
      stage.setPointerCapture(e.pointerId);
      pointers[e.pointerId] = {x: e.clientX, y: e.clientY};
      var ids = Object.keys(pointers);
      if (ids.length === 2) {
        var a = pointers[ids[0]], b = pointers[ids[1]];
        pinch = {distance: Math.hypot(a.x - b.x, a.y - b.y)};
        drag = null;
      } else {
        drag = {x: e.clientX - view.x, y: e.clientY - view.y};
      }
    });
    stage.addEventListener("pointermove", function (e) {
      if (!pointers[e.pointerId]) return;
      pointers[e.pointerId] = {x: e.clientX, y: e.clientY};
      var ids = Object.keys(pointers);
      if (pinch && ids.length === 2) {
        var a = pointers[ids[0]], b = pointers[ids[1]], box = stage.getBoundingClientRect();
        var distance = Math.hypot(a.x - b.x, a.y - b.y);
        zoomAt(distance / pinch.distance, (a.x + b.x) / 2 - box.left, (a.y + b.y) / 2 - box.top);
        pinch.distance = distance;
      } else if (drag) {
        view.x = e.clientX - drag.x;
        view.y = e.clientY - drag.y;
        draw();
      }
    });
    function release(e) { delete pointers[e.pointerId]; pinch = null; drag = null; }
    stage.addEventListener("pointerup", release);
    stage.addEventListener("pointercancel", release);
    var buttons = {".viewer-in": function () { zoomAt(STEP); }, ".viewer-out": function () { zoomAt(1 / STEP); },
                   ".viewer-one": oneToOne, ".viewer-fit": fit, ".viewer-reset": reset,
                   ".viewer-darker": function () { level("brightness", -LEVEL_STEP); },
                   ".viewer-brighter": function () { level("brightness", LEVEL_STEP); },
                   ".viewer-flatter": function () { level("contrast", -LEVEL_STEP); },
                   ".viewer-sharper": function () { level("contrast", LEVEL_STEP); },
                   ".viewer-previous": function () { show(index - 1); },
                   ".viewer-next": function () { show(index + 1); }, ".viewer-close": close};
    Object.keys(buttons).forEach(function (selector) {
      dialog.querySelector(selector).addEventListener("click", buttons[selector]);
    });
    return {open: open, close: close, key: key, isOpen: function () { return dialog.open; },
            state: function () { return {index: index, scale: view.scale, brightness: view.brightness,
                                          contrast: view.contrast}; }};
  }

  root.GlidemedViewer = GlidemedViewer;
}(typeof self !== "undefined" ? self : this));
