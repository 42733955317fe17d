// Loads plotly.js once per page, from the site's own _static/plotly/ folder, when the first
// figure made by ncbook.interactive.to_html asks for it; pages without a figure load nothing.
// A figure is drawn when it comes near the screen (IntersectionObserver), so a long page opens
// at once on a phone and plotly.js is fetched only by readers who scroll to a figure.
window.ncbookPlotly = (function () {
  var script = document.currentScript;
  var base = script ? script.src.replace(/[^\/]*$/, "") : "_static/";
  var waiting = [], state = "idle";
  function load() {
    state = "loading";
    var t = document.createElement("script");
    t.src = base + "plotly/plotly.min.js";
    t.onload = function () {
      state = "ready";
      waiting.splice(0).forEach(function (f) { f(); });
    };
    document.head.appendChild(t);
  }
  function now(f) {
    if (state === "ready") { f(); return; }
    waiting.push(f);
    if (state === "idle") { load(); }
  }
  return {
    ready: function (f, el) {
      if (!el || !("IntersectionObserver" in window)) { now(f); return; }
      var seen = new IntersectionObserver(function (entries) {
        if (entries.some(function (e) { return e.isIntersecting; })) {
          seen.disconnect();
          now(f);
        }
      }, {rootMargin: "600px 0px"});
      seen.observe(el);
    }
  };
})();
