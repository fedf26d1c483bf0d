// The widget manager (embed-amd.js) loads its icon fonts relative to its AMD module path,
// "@jupyter-widgets/html-manager/dist"; point that path at the copy in the book's _static.
(function () {
  var root = new URL(document.documentElement.dataset.content_root || "./", window.location.href);
  require.config({ paths: { "@jupyter-widgets/html-manager/dist": new URL("_static/widgets", root).href } });
})();
