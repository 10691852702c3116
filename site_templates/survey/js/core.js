/* glidemed survey core: SHA-256, canonical JSON, the hash chain and each rater's plan.
   No page, no storage: the survey page and Node (the tests) load this same file, and
   glidemed.survey.randomize / glidemed.responses.chain mirror it in Python. */
(function (root, factory) {
  if (typeof module === "object" && module.exports) module.exports = factory();
  else root.GlidemedCore = factory();
}(typeof self !== "undefined" ? self : this, function () {
  "use strict";

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
  function chainStart(buildHash, rater) { return sha256hex(buildHash + "\n" + canonicalJson(rater)); }

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

  /** This rater's order and images; mirrored by glidemed.survey.randomize.rater_plan.
      panelImages: each panel's image tokens, in the page's panel order. With perGroup > 0
      only the first perGroup panels of each group (groups: one number per panel) in the
      shuffled order are shown. Returns [{p: panel index, repeat: bool, images: [tokens]}]
      in the order shown. */
  function raterPlan(buildHash, rater, panelImages, imagesPerPanel, repeatPanels, groups, perGroup) {
    var hex = sha256hex(buildHash + "\n" + rater);
    var rand = sfc32(parseInt(hex.slice(0, 8), 16), parseInt(hex.slice(8, 16), 16),
                     parseInt(hex.slice(16, 24), 16), parseInt(hex.slice(24, 32), 16));
    for (var w = 0; w < 12; w++) rand();
    var n = panelImages.length, k = imagesPerPanel, i;
    var indices = [];
    for (i = 0; i < n; i++) indices.push(i);
    shuffle(rand, indices);
    if (perGroup > 0) {
      var shown = {};
      indices = indices.filter(function (p) {
        shown[groups[p]] = (shown[groups[p]] || 0) + 1;
        return shown[groups[p]] <= perGroup;
      });
    }
    var order = indices.map(function (p) {
      var images = shuffle(rand, panelImages[p].slice()).slice(0, k);
      return {p: p, repeat: false, images: images};
    });
    var repeats = Math.min(repeatPanels, n);
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

  /** The plans of the survey's blocks one after the other (glidemed.survey.randomize.
      blocks_plan): block i > 0 is drawn as if the rater id were rater + "\n" + i.
      blocks: [{panelImages, imagesPerPanel, repeatPanels, groups, perGroup}]. */
  function blocksPlan(buildHash, rater, blocks) {
    var plan = [], offset = 0;
    blocks.forEach(function (block, i) {
      raterPlan(buildHash, i === 0 ? rater : rater + "\n" + i, block.panelImages, block.imagesPerPanel,
                block.repeatPanels, block.groups || [], block.perGroup || 0).forEach(function (entry) {
        plan.push({p: entry.p + offset, repeat: entry.repeat, images: entry.images});
      });
      offset += block.panelImages.length;
    });
    return plan;
  }

  /** A page text with its {name} fields filled in from values. */
  function format(template, values) {
    return template.replace(/\{(\w+)\}/g, function (all, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : all;
    });
  }

  return {format: format, sha256hex: sha256hex, canonicalEvent: canonicalEvent, canonicalJson: canonicalJson,
          chainStep: chainStep, chainStart: chainStart, wellFormed: wellFormed,
          normaliseId: normaliseId, raterPlan: raterPlan, blocksPlan: blocksPlan};
}));
