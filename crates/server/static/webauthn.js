// Passkeys and security keys (WebAuthn): asks the browser's authenticator and posts its
// answer in an ordinary form. Without WebAuthn the key buttons stay hidden and the page
// says so; every other way in (password, code) works without this file.
(function () {
  "use strict";
  var supported = !!(window.PublicKeyCredential &&
    PublicKeyCredential.parseCreationOptionsFromJSON &&
    PublicKeyCredential.parseRequestOptionsFromJSON);

  function show(id) {
    var el = document.getElementById(id);
    if (el) { el.hidden = false; }
  }

  function fail(form, error) {
    var out = document.getElementById(form.dataset.status || "");
    if (out) {
      out.hidden = false;
      out.textContent = out.dataset.failed || String(error);
      // The browser's reason, for the helpdesk and the tests (NotAllowedError: cancelled).
      out.dataset.reason = error && error.name ? error.name + ": " + error.message : String(error);
    }
  }

  function post(form, credential) {
    form.querySelector("input[name=credential]").value = JSON.stringify(credential.toJSON());
    // The second-factor page's "remember this browser" box is in the code's form.
    var remember = document.getElementById("remember-browser");
    var copy = form.querySelector("input[name=remember_browser]");
    if (remember && copy) { copy.value = remember.checked ? "on" : ""; }
    form.submit();
  }

  // Registration (account page): the options are in the page.
  var create = document.querySelector("form[data-webauthn=create]");
  if (create) {
    if (!supported) { show("webauthn-unsupported"); return; }
    var createButton = create.querySelector("button");
    createButton.hidden = false;
    createButton.addEventListener("click", function (event) {
      event.preventDefault();
      var options = JSON.parse(document.getElementById("webauthn-options").textContent);
      navigator.credentials.create({
        publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options)
      }).then(function (credential) { post(create, credential); })
        .catch(function (error) { fail(create, error); });
    });
  }

  // A login with a key: at the second-factor step the options are in the page; on the login
  // page they are asked for (a ceremony per click, not per page view).
  var get = document.querySelector("form[data-webauthn=get]");
  if (get) {
    if (!supported) { return; }
    var getButton = document.getElementById(get.dataset.button);
    if (!getButton) { return; }
    getButton.hidden = false;
    var pending = null;
    var ask = function (options, conditional) {
      var request = {
        publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options)
      };
      if (conditional) {
        pending = new AbortController();
        request.mediation = "conditional";
        request.signal = pending.signal;
      }
      return navigator.credentials.get(request).then(function (credential) { post(get, credential); });
    };
    var fetchOptions = function () {
      var inline = document.getElementById("webauthn-options");
      if (inline) {
        return Promise.resolve({ ceremony: null, options: JSON.parse(inline.textContent) });
      }
      return fetch(get.dataset.optionsUrl, { method: "POST", credentials: "same-origin" })
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); });
    };
    var begin = function (conditional) {
      return fetchOptions().then(function (answer) {
        if (answer.ceremony) {
          get.querySelector("input[name=ceremony]").value = answer.ceremony;
        }
        return ask(answer.options, conditional);
      });
    };
    getButton.addEventListener("click", function (event) {
      event.preventDefault();
      // The button's request replaces the username field's (one request at a time).
      if (pending) { pending.abort(); pending = null; }
      begin(false).catch(function (error) { fail(get, error); });
    });
    // Conditional UI: the browser lists this site's passkeys under the username field
    // (autocomplete="username webauthn") where it can; nothing is shown otherwise. Not
    // after a refusal (the page shows its error): the person chooses what to try next.
    if (get.dataset.optionsUrl && PublicKeyCredential.isConditionalMediationAvailable &&
        !document.getElementById("login-error")) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (available) {
          begin(true).catch(function (error) {
            if (error && error.name !== "AbortError") { fail(get, error); }
          });
        }
      });
    }
  }
})();
