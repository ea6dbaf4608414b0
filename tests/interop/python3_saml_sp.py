"""A second SAML 2.0 service provider not written here: OneLogin's python3-saml (PyPI, over
python-xmlsec), with its strict checks on, signing its requests, wanting assertions signed and
encrypted and messages signed. The browser's part is played by `requests`.

  python3_saml_sp.py metadata <keydir> <out.xml>
      makes the SP's RSA key and certificate in <keydir> and writes its metadata.
  python3_saml_sp.py login <keydir> <sesame> <login> <password>
      logs in over HTTP-Redirect (signed request), checks the response, and prints what the
      SP learnt as JSON.
  python3_saml_sp.py logout <keydir> <sesame> <login> <password>
      logs in, then logs out from the SP (a signed LogoutRequest), and checks Sesame's answer.
  python3_saml_sp.py idp-logout <keydir> <sesame> <login> <password>
      logs in, then logs out at Sesame: python3-saml checks the LogoutRequest the browser
      brings and answers it; prints where the browser ends.
"""

import json
import os
import re
import html
import sys
from urllib.parse import parse_qs, urlparse

import requests
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.settings import OneLogin_Saml2_Settings

from sp_keys import make_key

SP = "https://onelogin.example.org/metadata"
ACS = "https://onelogin.example.org/acs"
SLO = "https://onelogin.example.org/slo"


def settings(keydir, sesame=None):
    with open(os.path.join(keydir, "key.pem")) as f:
        key = f.read()
    with open(os.path.join(keydir, "cert.pem")) as f:
        cert = f.read()
    data = {
        "strict": True,
        "debug": False,
        "sp": {
            "entityId": SP,
            "assertionConsumerService": {"url": ACS, "binding": C.BINDING_HTTP_POST},
            "singleLogoutService": {"url": SLO, "binding": C.BINDING_HTTP_REDIRECT},
            "NameIDFormat": C.NAMEID_PERSISTENT,
            "x509cert": cert,
            "privateKey": key,
        },
        "security": {
            "authnRequestsSigned": True,
            "logoutRequestSigned": True,
            "logoutResponseSigned": True,
            "wantAssertionsSigned": True,
            "wantAssertionsEncrypted": True,
            "wantMessagesSigned": True,
            "signatureAlgorithm": C.RSA_SHA256,
            "digestAlgorithm": C.SHA256,
            "rejectDeprecatedAlgorithm": True,
        },
    }
    if sesame:
        idp = OneLogin_Saml2_IdPMetadataParser.parse_remote(sesame + "/saml/metadata")
        data = OneLogin_Saml2_IdPMetadataParser.merge_settings(data, idp)
    else:
        # Metadata only: an IdP is required by the settings' checks, not used.
        data["idp"] = {
            "entityId": "https://idp.invalid",
            "singleSignOnService": {"url": "https://idp.invalid/sso", "binding": C.BINDING_HTTP_REDIRECT},
            "x509cert": cert,
        }
    return data


def request_data(url, post=None):
    parsed = urlparse(url)
    return {
        "https": "on",
        "http_host": parsed.hostname,
        "server_port": 443,
        "script_name": parsed.path,
        "get_data": {k: v[0] for k, v in parse_qs(parsed.query).items()},
        "post_data": post or {},
    }


def form_of(page):
    action = re.search(r'<form[^>]*action="([^"]*)"', page)
    fields = dict(
        (html.unescape(n), html.unescape(v))
        for n, v in re.findall(r'<input[^>]*name="([^"]*)"[^>]*value="([^"]*)"', page)
    )
    return html.unescape(action.group(1)) if action else None, fields


def login_session(keydir, sesame, user, password):
    """Logs in; returns (browser, settings, what the SP learnt)."""
    conf = settings(keydir, sesame)
    auth = OneLogin_Saml2_Auth(request_data(ACS), conf)
    url = auth.login(return_to="relay-1")
    request_id = auth.get_last_request_id()
    browser = requests.Session()
    page = browser.get(url, timeout=10)
    action, fields = form_of(page.text)
    assert "lt" in fields, page.text[:2000]
    fields.update({"username": user, "password": password})
    answer = browser.post(action, data=fields, timeout=10)
    acs, posted = form_of(answer.text)
    assert acs == ACS, (acs, answer.text[:2000])
    encrypted = b"EncryptedAssertion" in __import__("base64").b64decode(posted["SAMLResponse"])
    auth = OneLogin_Saml2_Auth(request_data(ACS, posted), conf)
    auth.process_response(request_id=request_id)
    errors = auth.get_errors()
    assert not errors, (errors, auth.get_last_error_reason())
    assert auth.is_authenticated()
    learnt = {
        "name_id": auth.get_nameid(),
        "name_id_format": auth.get_nameid_format(),
        "session_index": auth.get_session_index(),
        "attributes": auth.get_attributes(),
        "relay_state": posted.get("RelayState"),
        "encrypted": encrypted,
    }
    return browser, conf, learnt


def login(keydir, sesame, user, password):
    _, _, learnt = login_session(keydir, sesame, user, password)
    print(json.dumps(learnt))


def logout(keydir, sesame, user, password):
    browser, conf, learnt = login_session(keydir, sesame, user, password)
    auth = OneLogin_Saml2_Auth(request_data(SLO), conf)
    url = auth.logout(name_id=learnt["name_id"], session_index=learnt["session_index"],
                      name_id_format=learnt["name_id_format"])
    request_id = auth.get_last_request_id()
    back = browser.get(url, allow_redirects=False, timeout=10)
    assert back.status_code in (302, 303), (back.status_code, back.text[:2000])
    to_sp = back.headers["Location"]
    assert to_sp.startswith(SLO + "?"), to_sp
    auth = OneLogin_Saml2_Auth(request_data(to_sp), conf)
    auth.process_slo(keep_local_session=True, request_id=request_id)
    print(json.dumps({"errors": auth.get_errors(), "reason": auth.get_last_error_reason()}))


def idp_logout(keydir, sesame, user, password):
    browser, conf, learnt = login_session(keydir, sesame, user, password)
    out = browser.get(sesame + "/cas/logout", allow_redirects=False, timeout=10)
    assert out.status_code in (302, 303), (out.status_code, out.text[:2000])
    to_sp = out.headers["Location"]
    assert to_sp.startswith(SLO + "?"), to_sp
    auth = OneLogin_Saml2_Auth(request_data(to_sp), conf)
    back = auth.process_slo(keep_local_session=True)
    errors = auth.get_errors()
    final = browser.get(back, allow_redirects=False, timeout=10) if back else None
    print(
        json.dumps(
            {
                "errors": errors,
                "reason": auth.get_last_error_reason(),
                "back_to_sesame": bool(back) and back.startswith(sesame + "/saml/slo?"),
                "final_status": final.status_code if final is not None else None,
                "final_page": final.text[:4000] if final is not None else "",
            }
        )
    )


def main():
    mode = sys.argv[1]
    if mode == "metadata":
        make_key(sys.argv[2], "onelogin.example.org")
        saml_settings = OneLogin_Saml2_Settings(settings(sys.argv[2]), sp_validation_only=True)
        metadata = saml_settings.get_sp_metadata()
        assert not saml_settings.validate_metadata(metadata)
        with open(sys.argv[3], "wb") as f:
            f.write(metadata)
    elif mode == "login":
        login(*sys.argv[2:6])
    elif mode == "logout":
        logout(*sys.argv[2:6])
    elif mode == "idp-logout":
        idp_logout(*sys.argv[2:6])
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
