// The resident screen: each answer to a scan arrives over server-sent events and stays up
// for IDLE_MS, then the screen goes back to explaining what can be scanned.
(function () {
  "use strict";
  var IDLE_MS = 10000;
  var idle = document.getElementById("idle");
  var answer = document.getElementById("answer");
  var big = document.getElementById("answer-big");
  var zh = document.getElementById("answer-zh");
  var en = document.getElementById("answer-en");
  var bar = document.getElementById("answer-timer");
  var offline = document.getElementById("offline");
  var oos = document.getElementById("oos");
  var clock = document.getElementById("clock");
  var backToIdle = null;

  function kindClass(ev) {
    // A door left open is a request to the resident, shown like a refusal: calm amber.
    if (ev.kind === "info" && ev.reason === "left_open") { return "kind-refused"; }
    return "kind-" + ev.kind;
  }

  function toIdle() {
    answer.hidden = true;
    idle.hidden = false;
    document.body.dataset.state = "idle";
  }

  function show(ev) {
    answer.className = "answer " + kindClass(ev);
    big.textContent = ev.big || "";
    big.hidden = !ev.big;
    zh.textContent = ev.zh;
    en.textContent = ev.en;
    idle.hidden = true;
    answer.hidden = false;
    document.body.dataset.state = "answer";
    document.body.dataset.kind = ev.kind;
    bar.classList.remove("run");
    void bar.offsetWidth;  // restart the countdown animation
    bar.classList.add("run");
    if (backToIdle) { clearTimeout(backToIdle); }
    backToIdle = setTimeout(toIdle, IDLE_MS);
  }

  // The cart's configured time zone, so the clock agrees with the times in the answers.
  var clockFormat;
  try {
    clockFormat = new Intl.DateTimeFormat("zh-CN", {timeZone: clock.dataset.tz,
      hour: "2-digit", minute: "2-digit", hourCycle: "h23"});
  } catch (e) {
    clockFormat = new Intl.DateTimeFormat("zh-CN", {hour: "2-digit", minute: "2-digit",
      hourCycle: "h23"});
  }
  function tick() { clock.textContent = clockFormat.format(new Date()); }

  var source = new EventSource("/events");
  source.addEventListener("feedback", function (e) { show(JSON.parse(e.data)); });
  source.addEventListener("status", function (e) {
    var status = JSON.parse(e.data);
    offline.hidden = status.online;
    oos.hidden = !status.out_of_service;
  });
  source.addEventListener("open", function () { document.body.dataset.live = "1"; });
  document.body.dataset.state = "idle";
  tick();
  setInterval(tick, 5000);
})();
