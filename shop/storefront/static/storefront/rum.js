/* Real-user monitoring beacon (docs/rum.md). No build step, no dependencies.
 * Measures this page view (navigation timing, LCP, CLS, INP, JavaScript errors) and sends one
 * beacon when the page is hidden or left. Everything is wrapped: an ad blocker, an old browser
 * or a failed request costs the page nothing. */
(function () {
  "use strict";
  try {
    var script = document.currentScript;
    var page = (script && script.getAttribute("data-page")) || "other";
    var endpoint = (script && script.getAttribute("data-endpoint")) || "/api/rum/";
    var m = { lcp: null, cls: 0, inp: null, errors: 0, messages: [] };
    var sent = false;

    function observe(type, fn, opts) {
      try {
        var o = new PerformanceObserver(function (list) { list.getEntries().forEach(fn); });
        var init = { type: type, buffered: true };
        for (var k in opts || {}) { init[k] = opts[k]; }
        o.observe(init);
      } catch (e) { /* the browser does not know this entry type */ }
    }
    observe("largest-contentful-paint", function (e) { m.lcp = e.startTime; });
    // CLS as the largest session window (shifts < 1 s apart, window < 5 s), as web-vitals.
    var win = 0, winStart = 0, winLast = 0;
    observe("layout-shift", function (e) {
      if (e.hadRecentInput) { return; }
      if (win && e.startTime - winLast < 1000 && e.startTime - winStart < 5000) {
        win += e.value;
      } else { win = e.value; winStart = e.startTime; }
      winLast = e.startTime;
      if (win > m.cls) { m.cls = win; }
    });
    // INP: the slowest interaction seen (a page view has few; web-vitals' p98 is this then).
    function interaction(e) {
      if ((e.interactionId || e.entryType === "first-input") && (m.inp === null || e.duration > m.inp)) {
        m.inp = e.duration;
      }
    }
    observe("event", interaction, { durationThreshold: 40 });
    observe("first-input", interaction);

    function onError(message) {
      m.errors += 1;
      if (m.messages.length < 3) { m.messages.push(String(message || "error").slice(0, 200)); }
    }
    window.addEventListener("error", function (ev) { onError(ev && ev.message); });
    window.addEventListener("unhandledrejection", function (ev) {
      onError("unhandled rejection: " + (ev && ev.reason && (ev.reason.message || ev.reason)));
    });

    function navigation() {
      var nav = performance.getEntriesByType && performance.getEntriesByType("navigation")[0];
      if (!nav) { return {}; }
      var out = { ttfb_ms: nav.responseStart, dcl_ms: nav.domContentLoadedEventEnd };
      if (nav.loadEventEnd > 0) { out.load_ms = nav.loadEventEnd; }
      return out;
    }

    function send() {
      if (sent) { return; }
      sent = true;
      try {
        var body = navigation();
        body.page = page;
        if (m.lcp !== null) { body.lcp_ms = m.lcp; }
        body.cls = Math.round(m.cls * 10000) / 10000;
        if (m.inp !== null) { body.inp_ms = m.inp; }
        body.errors = m.errors;
        if (m.messages.length) { body.error_messages = m.messages; }
        var text = JSON.stringify(body);
        var queued = false;
        try {
          queued = navigator.sendBeacon(endpoint, new Blob([text], { type: "application/json" }));
        } catch (e) { /* missing, or stubbed out by a blocker: try fetch */ }
        if (!queued && window.fetch) {
          fetch(endpoint, {
            method: "POST", body: text, keepalive: true, credentials: "omit",
            headers: { "Content-Type": "application/json" }
          }).catch(function () { /* blocked or offline: nothing to do */ });
        }
      } catch (e) { /* never let monitoring break the page */ }
    }
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") { send(); }
    });
    window.addEventListener("pagehide", send);
  } catch (e) { /* never let monitoring break the page */ }
})();
