// Copies the new secret (#secret) to the clipboard when #copy is pressed,
// and says so in the live region #copy-status.
(function () {
  "use strict";
  function init() {
    var button = document.getElementById("copy");
    var secret = document.getElementById("secret");
    var status = document.getElementById("copy-status");
    if (!button || !secret || !status) {
      return;
    }
    button.hidden = false;
    function say(text) {
      status.textContent = "";
      window.setTimeout(function () { status.textContent = text; }, 50);
    }
    function fallback() {
      var range = document.createRange();
      range.selectNodeContents(secret);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      var ok = false;
      try {
        ok = document.execCommand("copy");
      } catch (e) {
        ok = false;
      }
      say(ok ? "Copied" : "Press Ctrl+C (⌘C) to copy the selected key");
    }
    button.addEventListener("click", function () {
      var text = secret.textContent;
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { say("Copied"); }, fallback);
      } else {
        fallback();
      }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
