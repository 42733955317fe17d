// Loads plotly.js once per page, from the site's own _static/plotly/ folder, when the first
// figure made by ncbook.interactive.to_html asks for it; pages without a figure load nothing.
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
  return {
    ready: function (f) {
      if (state === "ready") { f(); return; }
      waiting.push(f);
      if (state === "idle") { load(); }
    }
  };
})();
