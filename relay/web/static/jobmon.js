/* htcondor-jobmon: the small amount of script the pages use. Everything works
   without it except the live parts (job list, progress, tail) and the inline console. */
(function () {
  "use strict";

  function localTimes(root) {
    var full, short, thisYear = new Date().getFullYear();
    try {
      full = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric",
        hour: "2-digit", minute: "2-digit", second: "2-digit" });
      short = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric",
        hour: "2-digit", minute: "2-digit", second: "2-digit" });
    } catch (e) { return; }
    (root || document).querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime())) { return; }
      if (!t.title) { t.title = t.textContent; }
      t.textContent = (d.getFullYear() === thisYear ? short : full).format(d);
      t.classList.add("local");
    });
  }

  function setLive(on) {
    document.querySelectorAll(".live").forEach(function (el) {
      el.classList.toggle("on", on);
      var l = el.querySelector(".lbl");
      if (l) { l.textContent = on ? "live" : "reconnecting…"; }
    });
  }

  function fill(sel, html) {
    if (html === undefined || html === null) { return; }
    document.querySelectorAll(sel).forEach(function (el) { el.innerHTML = html; localTimes(el); });
  }

  /* job list, single job summary and farm status pushed by the server (SSE) */
  function liveUpdates() {
    var host = document.querySelector("[data-events]");
    if (!host || !window.EventSource) { return; }
    var es = new EventSource(host.getAttribute("data-events"));
    es.onopen = function () { setLive(true); };
    es.onerror = function () { setLive(false); };
    es.addEventListener("farm", function (ev) { fill("[data-farm]", JSON.parse(ev.data).html); });
    es.addEventListener("jobs", function (ev) {
      var d = JSON.parse(ev.data);
      fill("[data-jobrows]", d.rows);
      fill("[data-filters]", d.filters);
      setLive(true);
    });
    es.addEventListener("job", function (ev) {
      var d = JSON.parse(ev.data);
      Object.keys(d.parts || {}).forEach(function (k) { fill("[data-part=" + k + "]", d.parts[k]); });
      setLive(true);
    });
  }

  /* live tail of a sandbox file */
  function tails() {
    document.querySelectorAll("pre[data-tail]").forEach(function (pre) {
      if (!window.EventSource) { return; }
      var status = document.querySelector("[data-tail-status]");
      var es = new EventSource(pre.getAttribute("data-tail"));
      var first = true;
      function atBottom() { return pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40; }
      es.addEventListener("data", function (ev) {
        var d = JSON.parse(ev.data);
        var stick = atBottom() || first;
        if (first) { pre.textContent = ""; first = false; }
        pre.appendChild(document.createTextNode(d.text));
        if (pre.textContent.length > 400000) { pre.textContent = pre.textContent.slice(-300000); }
        if (stick) { pre.scrollTop = pre.scrollHeight; }
        pre.setAttribute("data-offset", String(d.next));
        if (status) { status.textContent = "following · " + d.size_text; }
      });
      es.addEventListener("end", function (ev) {
        var d = JSON.parse(ev.data);
        if (status) { status.textContent = d.message; }
        es.close();
      });
      es.addEventListener("status", function (ev) {
        if (status) { status.textContent = JSON.parse(ev.data).message; }
      });
      es.addEventListener("fault", function (ev) {
        var d = JSON.parse(ev.data);
        if (status) { status.textContent = d.message; }
        if (first) { pre.textContent = ""; first = false; }
        es.close();
      });
      es.onopen = function () { if (status) { status.textContent = "following"; } };
    });
  }

  /* command console: run without leaving the page */
  function consoles() {
    document.querySelectorAll("form[data-console]").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var out = document.querySelector(form.getAttribute("data-console"));
        var btn = form.querySelector("button");
        btn.disabled = true;
        out.innerHTML = '<p class="muted">running…</p>';
        fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin",
          headers: { "Accept": "text/html-fragment" } })
          .then(function (r) { return r.text(); })
          .then(function (html) { out.innerHTML = html; })
          .catch(function (e) { out.textContent = "request failed: " + e; })
          .then(function () { btn.disabled = false; });
      });
    });
  }

  /* remove/hold/release/drain ask first */
  function confirms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { ev.preventDefault(); return; }
        var c = form.querySelector("input[name=confirm]");
        if (c) { c.value = "yes"; }
      });
    });
  }

  function autosubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
      sel.addEventListener("change", function () { sel.form.submit(); });
      var b = sel.form.querySelector("[data-noscript-only]");
      if (b) { b.style.display = "none"; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    liveUpdates();
    tails();
    consoles();
    confirms();
    autosubmit();
  });
})();
