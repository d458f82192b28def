// The attendant console: reload now and then so door states stay current, but never while
// the attendant is typing or has an action panel open.
(function () {
  "use strict";
  var REFRESH_MS = 20000;
  function busy() {
    if (document.querySelector("details[open]")) { return true; }
    var active = document.activeElement;
    if (active && (active.tagName === "INPUT" || active.tagName === "BUTTON")) { return true; }
    var inputs = document.querySelectorAll("input:not([type=hidden])");
    for (var i = 0; i < inputs.length; i++) {
      if (inputs[i].value && inputs[i].type !== "date") { return true; }
    }
    return false;
  }
  setInterval(function () {
    if (!busy() && document.visibilityState === "visible") { window.location.reload(); }
  }, REFRESH_MS);
})();
