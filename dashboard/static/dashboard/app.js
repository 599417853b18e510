// mcpauth dashboard: copy buttons and confirmations. No inline script anywhere (CSP script-src 'self').
(function () {
  "use strict";

  function copyText(button) {
    var target = document.querySelector(button.getAttribute("data-copy"));
    if (!target) return;
    var text = target.value !== undefined ? target.value : target.textContent;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      button.classList.add("copied");
      setTimeout(function () { button.textContent = label; button.classList.remove("copied"); }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text.trim()).then(done, function () {});
    } else {
      var area = document.createElement("textarea");
      area.value = text.trim();
      document.body.appendChild(area);
      area.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selectable */ }
      document.body.removeChild(area);
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button) { event.preventDefault(); copyText(button); }
  });

  // Destructive plain forms ask first; htmx forms use hx-confirm instead.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); }
  }, true);

  // Login mode: the login URL matters only in handoff mode.
  function syncLoginMode() {
    var mode = document.getElementById("id_login_mode");
    var row = document.getElementById("login-url-row");
    if (mode && row) { row.hidden = mode.value !== "handoff"; }
  }
  document.addEventListener("change", function (event) {
    if (event.target.id === "id_login_mode") syncLoginMode();
  });
  document.addEventListener("DOMContentLoaded", syncLoginMode);
})();
