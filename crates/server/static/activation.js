// The identity form's anti-automation check: find a nonce such that SHA-256(prefix + nonce)
// starts with the required number of zero bits, and put it in the form. Without this script
// (or without WebCrypto) the form shows a question instead; either answer is accepted.
(function () {
  "use strict";
  var form = document.getElementById("identity-form");
  if (!form || !window.crypto || !window.crypto.subtle || !window.TextEncoder) { return; }
  var prefix = form.dataset.powPrefix;
  var bits = parseInt(form.dataset.powBits, 10) || 0;
  var nonceInput = document.getElementById("pow_nonce");
  var question = document.getElementById("challenge-question");
  var auto = document.getElementById("challenge-auto");
  var encoder = new TextEncoder();
  var solved = false;
  var submitting = false;

  function zeroBits(bytes) {
    var count = 0;
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0) { count += 8; continue; }
      var b = bytes[i];
      while ((b & 0x80) === 0) { count += 1; b <<= 1; }
      return count;
    }
    return count;
  }

  function attempt(n) {
    return window.crypto.subtle.digest("SHA-256", encoder.encode(prefix + n)).then(function (digest) {
      if (zeroBits(new Uint8Array(digest)) >= bits) { return String(n); }
      return n % 2000 === 1999
        ? new Promise(function (resolve) { setTimeout(function () { resolve(attempt(n + 1)); }, 0); })
        : attempt(n + 1);
    });
  }

  attempt(0).then(function (nonce) {
    nonceInput.value = nonce;
    solved = true;
    if (question) { question.hidden = true; }
    if (auto) { auto.hidden = false; }
    if (submitting) { form.submit(); }
  });

  form.addEventListener("submit", function (event) {
    if (!solved && !document.getElementById("challenge_answer").value) {
      event.preventDefault();
      submitting = true;
    }
  });
})();
