// The fleet view refreshes its cards every few seconds: the fragment comes from the same
// server-rendered template, so the page without script is the same page, only not live.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !live.dataset.poll) { return; }
  var url = live.dataset.poll + window.location.search;
  var every = 3000;
  function refresh() {
    fetch(url, { credentials: "same-origin", redirect: "manual" })
      .then(function (res) {
        if (res.status !== 200) { throw new Error("status " + res.status); }
        return res.text();
      })
      .then(function (html) { live.innerHTML = html; live.dataset.refreshed = String(Date.now()); })
      .catch(function () { /* the next round tries again; a logged-out page stays as it is */ })
      .finally(function () { window.setTimeout(refresh, every); });
  }
  window.setTimeout(refresh, every);
})();
