// The kiosk (the browser on the cart's own display, opened at /?kiosk=1 by cart-kiosk.service):
// a long press in the resident screen's top-left corner, or F2, opens the attendant console;
// a minute without a touch or a key on any other page logs the attendant out and goes back
// to the resident screen. Anywhere else (an attendant's laptop) this script does nothing.
// The kiosk mode and the time of the last touch live in sessionStorage, so they survive the
// console's own reloads (console.js) and end with the browser.
(function () {
  "use strict";
  var HOLD_MS = 3000;      // long press
  var CORNER_PX = 96;      // the hidden corner, top left
  var IDLE_MS = 60000;     // back to the resident screen
  var MODE = "cartKiosk", ACTIVE = "cartKioskActiveAt", LEAVING = "cartKioskLeaving";
  var store = window.sessionStorage;

  if (/[?&]kiosk=1(&|$)/.test(window.location.search)) { store.setItem(MODE, "1"); }
  if (store.getItem(MODE) !== "1") { return; }
  document.documentElement.dataset.kiosk = "1";

  function openConsole() {
    store.setItem(ACTIVE, String(Date.now()));
    window.location.assign("/attendant");
  }

  if (document.body.classList.contains("page-resident")) {
    store.removeItem(LEAVING);
    var hold = null;
    var cancel = function () { if (hold) { clearTimeout(hold); hold = null; } };
    document.addEventListener("pointerdown", function (e) {
      if (e.clientX <= CORNER_PX && e.clientY <= CORNER_PX) {
        cancel();
        hold = setTimeout(openConsole, HOLD_MS);
      }
    });
    ["pointerup", "pointercancel", "pointerleave"].forEach(function (name) {
      document.addEventListener(name, cancel);
    });
    document.addEventListener("keydown", function (e) {
      if (e.key === "F2") { e.preventDefault(); openConsole(); }
    });
    return;
  }

  // Any other page: the console, its login, its reports, a refusal.
  if (!store.getItem(ACTIVE)) { store.setItem(ACTIVE, String(Date.now())); }
  var touched = function () { store.setItem(ACTIVE, String(Date.now())); };
  ["pointerdown", "keydown", "wheel", "input"].forEach(function (name) {
    document.addEventListener(name, touched, {capture: true, passive: true});
  });
  var leaving = false;
  function backToResident() {
    // Remembered across a page load: the console's own reload may cut this one short, and
    // the page it loads must carry on leaving, not start a new minute.
    leaving = true;
    store.setItem(LEAVING, "1");
    store.removeItem(ACTIVE);
    var go = function () { window.location.replace("/"); };
    var logout = document.querySelector('form[action="/attendant/logout"]');
    if (!logout) { go(); return; }
    // The next person at the screen must not find the console logged in.
    fetch(logout.action, {method: "POST", body: new URLSearchParams(new FormData(logout)),
                          credentials: "same-origin", redirect: "manual"})
      .then(go, go);
  }
  if (store.getItem(LEAVING) === "1") { backToResident(); return; }
  setInterval(function () {
    var since = Date.now() - Number(store.getItem(ACTIVE) || Date.now());
    if (!leaving && since >= IDLE_MS) { backToResident(); }
  }, 1000);
})();
