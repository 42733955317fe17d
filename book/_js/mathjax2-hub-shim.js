// The ipywidgets HTML manager typesets widget labels through the MathJax 2 API
// (MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])); the book loads MathJax 3, which has no Hub.
// This maps that one call onto MathJax 3's typesetPromise so widget pages raise no errors.
(function () {
  function typeset(el) {
    var mj = window.MathJax;
    if (mj && mj.typesetPromise) {
      mj.typesetPromise(el ? [el] : undefined).catch(function () {});
    } else if (mj && mj.startup && mj.startup.promise) {
      mj.startup.promise.then(function () { typeset(el); });
    }
  }
  var hub = {
    Queue: function () {
      for (var i = 0; i < arguments.length; i++) {
        var job = arguments[i];
        if (Array.isArray(job) && job[0] === "Typeset") typeset(job[2]);
      }
    }
  };
  function install() {
    if (!window.MathJax) window.MathJax = {};
    if (!window.MathJax.Hub) window.MathJax.Hub = hub;
  }
  install();
  document.addEventListener("DOMContentLoaded", install);
  window.addEventListener("load", function () {
    install();
    if (window.MathJax.startup && window.MathJax.startup.promise) window.MathJax.startup.promise.then(install);
  });
})();
