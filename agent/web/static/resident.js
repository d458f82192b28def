// The resident screen: each answer to a scan arrives over server-sent events and stays up
// until the next scan or for the configured time (web.answer_s, sent with each answer so a
// pushed change needs no reload), then the screen goes back to explaining what can be
// scanned. A tap keeps the answer up; a second tap puts it away.
(function () {
  "use strict";
  var screen = document.getElementById("screen");
  var PAGE_HOLD_S = parseInt(screen.dataset.answerS, 10) || 20;
  var idle = document.getElementById("idle");
  var answer = document.getElementById("answer");
  var big = document.getElementById("answer-big");
  var mark = document.getElementById("answer-mark");
  var markZh = document.getElementById("answer-mark-zh");
  var markEn = document.getElementById("answer-mark-en");
  var zh = document.getElementById("answer-zh");
  var en = document.getElementById("answer-en");
  var bar = document.getElementById("answer-timer");
  var keep = document.getElementById("answer-keep");
  var announce = document.getElementById("announce");
  var offline = document.getElementById("offline");
  var oos = document.getElementById("oos");
  var clock = document.getElementById("clock");
  var backToIdle = null;

  // The mark says what happened by shape and word, not colour alone: a tick in a circle, a
  // cross in a diamond, a warning triangle, a box with an arrow in, an "i" in a circle.
  var MARKS = {
    ok: ["成功", "Accepted"], no: ["未通过", "Refused"], notice: ["请注意", "Please note"],
    deposit: ["投递", "Deposit"], info: ["提示", "Information"]
  };
  var KEEP_HINTS = {
    running: ["轻触屏幕可保持显示", "Tap the screen to keep this"],
    kept: ["已保持显示，再次轻触返回", "Kept; tap again to close"]
  };

  function markOf(ev) {
    // A door left open is a request to the resident, shown like a refusal: calm amber.
    if (ev.kind === "info" && ev.reason === "left_open") { return "notice"; }
    return {accepted: "ok", refused: "no", deposit: "deposit"}[ev.kind] || "info";
  }

  function kindClass(ev) {
    if (ev.kind === "info" && ev.reason === "left_open") { return "kind-refused"; }
    return "kind-" + ev.kind;
  }

  function say(el, words) {
    el.querySelector(".zh").textContent = words[0];
    el.querySelector(".en").textContent = words[1];
  }

  function toIdle() {
    if (backToIdle) { clearTimeout(backToIdle); }
    backToIdle = null;
    answer.hidden = true;
    idle.hidden = false;
    delete answer.dataset.kept;
    document.body.dataset.state = "idle";
  }

  function hold() {
    answer.dataset.kept = "1";
    if (backToIdle) { clearTimeout(backToIdle); }
    backToIdle = null;
    bar.classList.remove("run");
    say(keep, KEEP_HINTS.kept);
  }

  // Said once, politely, in a region that is always in the page: a region that appears with
  // its text already in it is not announced by every screen reader.
  function announceAnswer(words, ev) {
    var zhPart = document.createElement("span");
    zhPart.textContent = words[0] + "：" + ev.zh + " ";
    var enPart = document.createElement("span");
    enPart.lang = "en";
    enPart.textContent = words[1] + ": " + ev.en;
    announce.replaceChildren(zhPart, enPart);
  }

  function show(ev) {
    var kind = markOf(ev);
    var holdMs = 1000 * (ev.hold_s > 0 ? ev.hold_s : PAGE_HOLD_S);
    answer.className = "answer " + kindClass(ev);
    mark.dataset.mark = kind;
    markZh.textContent = MARKS[kind][0];
    markEn.textContent = MARKS[kind][1];
    big.textContent = ev.big || "";
    big.hidden = !ev.big;
    zh.textContent = ev.zh;
    en.textContent = ev.en;
    idle.hidden = true;
    answer.hidden = false;
    delete answer.dataset.kept;
    say(keep, KEEP_HINTS.running);
    document.body.dataset.state = "answer";
    document.body.dataset.kind = ev.kind;
    bar.style.animationDuration = holdMs + "ms";
    bar.classList.remove("run");
    void bar.offsetWidth;  // restart the countdown animation
    bar.classList.add("run");
    if (backToIdle) { clearTimeout(backToIdle); }
    backToIdle = setTimeout(toIdle, holdMs);
    announceAnswer(MARKS[kind], ev);
  }

  function tapped() {
    if (answer.hidden) { return; }
    if (answer.dataset.kept) { toIdle(); } else { hold(); }
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
  document.addEventListener("click", tapped);
  document.addEventListener("keydown", function (e) {
    if (e.key === " " || e.key === "Enter") { tapped(); }
  });
  document.body.dataset.state = "idle";
  tick();
  setInterval(tick, 5000);
})();
