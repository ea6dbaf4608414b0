// Progressive enhancement only: every form works without this file.
(function () {
  "use strict";
  document.querySelectorAll("button.toggle-password").forEach(function (button) {
    var input = document.getElementById(button.getAttribute("aria-controls"));
    if (!input) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var show = input.type === "password";
      input.type = show ? "text" : "password";
      button.setAttribute("aria-pressed", show ? "true" : "false");
      button.textContent = show ? button.dataset.hide : button.dataset.show;
      input.focus();
    });
  });
})();
// method=POST service responses: post the ticket at once (the button is there without JS).
(function () {
  "use strict";
  var form = document.querySelector("form[data-autosubmit]");
  if (form) { form.submit(); }
})();
