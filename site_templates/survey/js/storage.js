/* glidemed survey storage: every rater's answers kept in this browser (localStorage) as they
   are given, so that a reload or a closed tab loses nothing; invitation tokens too. */
(function (root) {
  "use strict";

  /** The storage of one build (names start with prefix, "glidemed:<build hash>:");
      onChange(ok) is told when saving fails, and when it works again. */
  function GlidemedStorage(prefix, onChange) {
    var ok = true;
    function get(name) {
      try { return window.localStorage.getItem(prefix + name); } catch (e) { return null; }
    }
    function put(pairs) {
      try {
        Object.keys(pairs).forEach(function (name) { window.localStorage.setItem(prefix + name, pairs[name]); });
        if (!ok) { ok = true; onChange(true); }
        return true;
      } catch (e) {
        ok = false;
        onChange(false);
        return false;
      }
    }
    function remove(name) {
      try { window.localStorage.removeItem(prefix + name); } catch (e) { /* nothing to remove */ }
    }
    return {
      /** Save a rater's whole state; they become the rater a reload returns to. */
      saveRater: function (state) {
        var pairs = {"last-rater": state.rater};
        pairs["rater:" + state.rater] = JSON.stringify(state);
        return put(pairs);
      },
      /** A rater's saved state, or null. */
      loadRater: function (rater) {
        var text = get("rater:" + rater);
        if (!text) return null;
        try {
          var saved = JSON.parse(text);
          return saved && saved.rater === rater && Array.isArray(saved.events) ? saved : null;
        } catch (e) {
          return null;
        }
      },
      lastRater: function () { return get("last-rater"); },
      forgetLastRater: function () { remove("last-rater"); },
      /** A rater's invitation token (kept quietly: the invitation link still has it). */
      putToken: function (rater, token) {
        try { window.localStorage.setItem(prefix + "token:" + rater, token); } catch (e) { /* the URL has it */ }
      },
      token: function (rater) { return get("token:" + rater); },
      /** A display choice of whoever uses this browser (e.g. the theme), kept quietly. */
      putSetting: function (name, value) {
        try { window.localStorage.setItem(prefix + "setting:" + name, value); } catch (e) { /* for this visit only */ }
      },
      setting: function (name) { return get("setting:" + name); },
      /** Whether storage works at all (warns through onChange when not). */
      probe: function () { if (put({probe: "1"})) remove("probe"); }
    };
  }

  root.GlidemedStorage = GlidemedStorage;
}(typeof self !== "undefined" ? self : this));
