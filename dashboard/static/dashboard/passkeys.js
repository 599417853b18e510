// Passkeys (WebAuthn): add one on the Security page, use one at sign-in. The server sends the
// options (py_webauthn's JSON, binary fields as base64url) and checks the answer; no inline script.
(function () {
  "use strict";

  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(base64 + "===".slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function csrf() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf()},
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) {
          if (data.redirect) { window.location.assign(data.redirect); }
          throw new Error(data.error || "Something went wrong.");
        }
        return data;
      });
    });
  }

  function descriptors(list) {
    return (list || []).map(function (c) { return {type: c.type, id: toBytes(c.id), transports: c.transports}; });
  }

  function creationOptions(o) {
    o.challenge = toBytes(o.challenge);
    o.user.id = toBytes(o.user.id);
    o.excludeCredentials = descriptors(o.excludeCredentials);
    return o;
  }

  function requestOptions(o) {
    o.challenge = toBytes(o.challenge);
    o.allowCredentials = descriptors(o.allowCredentials);
    return o;
  }

  function credentialJSON(c) {
    var r = c.response, response = {clientDataJSON: toText(r.clientDataJSON)};
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      response.userHandle = r.userHandle ? toText(r.userHandle) : null;
    }
    return {id: c.id, rawId: toText(c.rawId), type: c.type, response: response,
            clientExtensionResults: c.getClientExtensionResults(), authenticatorAttachment: c.authenticatorAttachment};
  }

  function wire(box, run) {
    var button = box.querySelector("button"), error = box.querySelector(".error");
    button.addEventListener("click", function () {
      error.hidden = true;
      button.disabled = true;
      run(box).then(function (data) { window.location.assign(data.redirect); }, function (e) {
        error.textContent = e && e.name === "NotAllowedError" ? "The passkey prompt was cancelled or timed out." : (e.message || String(e));
        error.hidden = false;
        button.disabled = false;
      });
    });
  }

  function register(box) {
    var name = document.getElementById("passkey-name").value;
    return post(box.getAttribute("data-options")).then(function (options) {
      return navigator.credentials.create({publicKey: creationOptions(options)});
    }).then(function (credential) {
      return post(box.getAttribute("data-verify"), {name: name, credential: credentialJSON(credential)});
    });
  }

  function signIn(box) {
    return post(box.getAttribute("data-options")).then(function (options) {
      return navigator.credentials.get({publicKey: requestOptions(options)});
    }).then(function (credential) {
      return post(box.getAttribute("data-verify"), {credential: credentialJSON(credential)});
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.PublicKeyCredential) return;
    document.querySelectorAll("[data-passkey-register]").forEach(function (box) { wire(box, register); });
    document.querySelectorAll("[data-passkey-login]").forEach(function (box) { wire(box, signIn); });
  });
})();
