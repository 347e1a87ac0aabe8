// qoelab pages: live campaign progress over server-sent events, fragments that refresh
// themselves, and confirmations. No external code.
(function () {
  "use strict";

  function text(el, value) { if (el) el.textContent = value; }

  function formatEta(s) {
    if (s === null || s === undefined) return "–";
    s = Math.round(s);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  function formatRate(bps) {
    if (bps === null || bps === undefined) return "unlimited";
    if (bps >= 1e9) return (bps / 1e9).toFixed(3).replace(/\.?0+$/, "") + " Gbit/s";
    if (bps >= 1e6) return (bps / 1e6).toFixed(3).replace(/\.?0+$/, "") + " Mbit/s";
    return (bps / 1e3).toFixed(3).replace(/\.?0+$/, "") + " kbit/s";
  }

  // Campaign page: <section data-campaign-events="/campaigns/3/events">.
  function watchCampaign(root) {
    var source = new EventSource(root.getAttribute("data-campaign-events"));
    var field = function (name) { return root.querySelector("[data-field=" + name + "]"); };
    function progress(p) {
      var total = p.pending + p.running + p.done + p.failed + p.discarded;
      ["pending", "running", "done", "failed", "discarded"].forEach(function (k) {
        text(field(k), p[k]);
        var bar = root.querySelector(".progress ." + k);
        if (bar) bar.style.width = (total ? 100 * p[k] / total : 0) + "%";
      });
      text(field("ended"), p.done + p.failed + p.discarded);
      text(field("total"), total);
    }
    function status(s) {
      var el = field("status");
      if (el) { el.textContent = s; el.className = "badge " + s; }
      root.setAttribute("data-status", s);
      if (s === "done") { text(field("current"), "–"); text(field("eta"), "–"); source.close(); }
    }
    source.onmessage = function (message) {
      var e = JSON.parse(message.data);
      if (e.type === "snapshot") { progress(e.progress); status(e.status); }
      else if (e.type === "session_started") {
        text(field("current"), "session " + (e.seq + 1) + " of " + e.total + " at " + formatRate(e.rate_bps));
        text(field("eta"), formatEta(e.eta_s));
      } else if (e.type === "session_ended") {
        progress(e.progress);
        if (e.failure && e.status === "failed") text(field("last-failure"), e.failure);
      } else if (e.type === "campaign_status") { status(e.status); }
      else if (e.type === "store_retrying") { text(field("last-failure"), "waiting for the database: " + e.error); }
    };
  }

  // <div data-refresh="/fragment" data-every="2000">: replaced by the fragment periodically.
  function refresh(el) {
    var every = parseInt(el.getAttribute("data-every") || "2000", 10);
    var busy = false;
    setInterval(function () {
      if (busy || document.hidden) return;
      busy = true;
      fetch(el.getAttribute("data-refresh"), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) el.innerHTML = html; })
        .catch(function () {})
        .then(function () { busy = false; });
    }, every);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-campaign-events]").forEach(watchCampaign);
    document.querySelectorAll("[data-refresh]").forEach(refresh);
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.getAttribute("data-confirm"))) e.preventDefault();
      });
    });
  });
})();
