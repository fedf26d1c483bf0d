// The ipywidgets html manager typesets widget labels with MathJax 2's MathJax.Hub.Queue;
// the book ships MathJax 3, which has no Hub. Give every MathJax object the page ever holds
// (Sphinx's config object, then MathJax 3 itself) a hidden Hub.Queue that calls typesetPromise.
(function () {
  var tries = 0;
  function typeset(el) {
    var mj = window.MathJax;
    if (mj && mj.typesetPromise && mj.startup && mj.startup.promise) {
      mj.startup.promise.then(function () { return mj.typesetPromise([el]); });
    } else if (tries++ < 100) {  // MathJax 3 has not started yet: try again shortly
      setTimeout(function () { typeset(el); }, 100);
    }
  }
  var hub = { Queue: function (job) { var el = job && job[job.length - 1]; if (el && el.nodeType) typeset(el); } };
  function addHub(obj) {
    if (obj && typeof obj === "object" && !Object.prototype.hasOwnProperty.call(obj, "Hub")) {
      // Not enumerable, so MathJax 3 never reads it as a configuration section.
      Object.defineProperty(obj, "Hub", { value: hub, enumerable: false, configurable: true });
    }
    return obj;
  }
  var current = addHub(window.MathJax);
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    get: function () { return current; },
    set: function (value) { current = addHub(value); }
  });
})();
