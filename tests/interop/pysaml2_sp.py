"""A SAML 2.0 service provider not written here (pysaml2, from PyPI) logs a person in through
Sesame: its AuthnRequest goes over HTTP-Redirect or HTTP-POST, the person logs in on Sesame's
page, and pysaml2 reads and checks the response the page posts back (signature against the
key in Sesame's published metadata, audience, recipient, InResponseTo, validity).

  pysaml2_sp.py metadata <keydir> <out.xml>
      makes the SP's RSA key and certificate in <keydir> (signing and encryption) and writes
      its metadata, for Sesame's configuration.
  pysaml2_sp.py login <keydir> <sesame> <login> <password> <redirect|post> [force]
      logs in, then asks again with the session (no password), and prints what the SP
      learnt as JSON (and whether the assertions came encrypted).
  pysaml2_sp.py passive <keydir> <sesame>
      asks with IsPassive and no session; prints the status the SP read.
  pysaml2_sp.py logout <keydir> <sesame> <login> <password>
      logs in, then logs out from the SP (a LogoutRequest over HTTP-Redirect), reads Sesame's
      LogoutResponse, and asks again: Sesame must show its login page.
  pysaml2_sp.py idp-logout <keydir> <sesame> <login> <password>
      logs in, then logs out at Sesame (/cas/logout): Sesame sends the browser to this SP's
      logout service with a signed LogoutRequest (this SP has no back channel), pysaml2
      checks it and answers, and Sesame ends on its logged-out page.
  pysaml2_sp.py unsolicited <keydir> <sesame> <login> <password>
      opens Sesame's IdP-initiated login for this SP, logs in, and prints what the SP (which
      accepts unsolicited responses) learnt.

The browser's part (following redirects, posting the login form and the auto-submitted form)
is played by `requests`; everything SAML is pysaml2's.
"""

import html
import json
import os
import re
import sys
import tempfile

import requests
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_PERSISTENT
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from sp_keys import make_key

# PYSAML2_SIGN_REQUESTS=1: the SP signs its AuthnRequests (and its metadata says so).
SIGN = os.environ.get("PYSAML2_SIGN_REQUESTS") == "1"

SP = "https://sp.example.org/saml/metadata"
ACS = "https://sp.example.org/saml/acs"
SLO = "https://sp.example.org/saml/slo"


def config(keydir, idp_metadata_file=None, unsolicited=False):
    key_file = keydir + "/key.pem"
    cert_file = keydir + "/cert.pem"
    conf = {
        "key_file": key_file,
        "cert_file": cert_file,
        "encryption_keypairs": [{"key_file": key_file, "cert_file": cert_file}],
        "entityid": SP,
        "service": {
            "sp": {
                "name": "pysaml2 test SP",
                "endpoints": {
                    "assertion_consumer_service": [(ACS, BINDING_HTTP_POST)],
                    "single_logout_service": [(SLO, BINDING_HTTP_REDIRECT)],
                },
                "allow_unsolicited": unsolicited,
                "authn_requests_signed": SIGN,
                "want_assertions_signed": True,
                "want_response_signed": False,
                "name_id_format": NAMEID_FORMAT_PERSISTENT,
            }
        },
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "allow_unknown_attributes": True,
    }
    if idp_metadata_file:
        conf["metadata"] = {"local": [idp_metadata_file]}
    c = SPConfig()
    c.load(conf)
    return c


def client(keydir, sesame, unsolicited=False):
    md = requests.get(sesame + "/saml/metadata", timeout=10)
    md.raise_for_status()
    assert md.headers["content-type"].startswith("application/samlmetadata+xml"), md.headers
    f = tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False)
    f.write(md.text)
    f.close()
    return Saml2Client(config(keydir, f.name, unsolicited))


def form_of(page):
    """The action and fields of the first form of an HTML page."""
    action = re.search(r'<form[^>]*action="([^"]*)"', page)
    fields = dict(
        (html.unescape(n), html.unescape(v))
        for n, v in re.findall(r'<input[^>]*name="([^"]*)"[^>]*value="([^"]*)"', page)
    )
    return html.unescape(action.group(1)) if action else None, fields


def send_request(browser, saml_client, idp, binding, relay, **kw):
    """Sends an AuthnRequest as the SP's page would; returns (request id, Sesame's answer)."""
    if SIGN:
        kw = dict(kw, sign=True, sigalg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
    req_id, info = saml_client.prepare_for_authenticate(
        entityid=idp, relay_state=relay, binding=binding, **kw
    )
    if binding == BINDING_HTTP_REDIRECT:
        location = dict(info["headers"])["Location"]
        return req_id, browser.get(location, timeout=10)
    action, fields = form_of(info["data"])
    return req_id, browser.post(action, data=fields, timeout=10)


def posted_response(page):
    """The SAMLResponse and RelayState of Sesame's auto-submitted page, and where it posts."""
    action, fields = form_of(page)
    assert "SAMLResponse" in fields, page[:2000]
    return action, fields["SAMLResponse"], fields.get("RelayState")


def read(saml_client, response, req_id, relay):
    import base64

    encrypted = b"EncryptedAssertion" in base64.b64decode(response)
    authn = saml_client.parse_authn_request_response(
        response, BINDING_HTTP_POST, outstanding={req_id: relay}
    )
    assert authn is not None, "pysaml2 refused the response"
    name_id = authn.assertion.subject.name_id
    statement = authn.assertion.authn_statement[0]
    return {
        "name_id": name_id.text,
        "name_id_format": name_id.format,
        "attributes": authn.get_identity(),
        "session_index": statement.session_index,
        "authn_context": statement.authn_context.authn_context_class_ref.text,
        "in_response_to": authn.in_response_to,
        "encrypted": encrypted,
    }


def login(keydir, sesame, user, password, binding_name, force):
    binding = BINDING_HTTP_REDIRECT if binding_name == "redirect" else BINDING_HTTP_POST
    saml_client = client(keydir, sesame)
    idp = sesame + "/saml/metadata"
    browser = requests.Session()
    req_id, page = send_request(browser, saml_client, idp, binding, "relay-1")
    # Sesame's login page, reached through its redirects.
    action, fields = form_of(page.text)
    assert "lt" in fields, page.text[:2000]
    fields.update({"username": user, "password": password})
    answer = browser.post(action, data=fields, timeout=10)
    assert answer.status_code == 200, (answer.status_code, answer.text[:2000])
    acs, response, relay = posted_response(answer.text)
    assert acs == ACS, acs
    assert relay == "relay-1", relay
    first = read(saml_client, response, req_id, relay)
    # Again, with the session: no login page, a new assertion (or a fresh login for force).
    kw = {"force_authn": "true"} if force else {}
    req_id2, page2 = send_request(browser, saml_client, idp, binding, "relay-2", **kw)
    if force:
        action, fields = form_of(page2.text)
        assert "lt" in fields, "ForceAuthn must show the login page: " + page2.text[:2000]
        fields.update({"username": user, "password": password})
        page2 = browser.post(action, data=fields, timeout=10)
    acs2, response2, relay2 = posted_response(page2.text)
    assert relay2 == "relay-2", relay2
    second = read(saml_client, response2, req_id2, relay2)
    # The same response played again is refused by the SP (its InResponseTo is answered).
    replayed = None
    try:
        saml_client.parse_authn_request_response(response2, BINDING_HTTP_POST, outstanding={})
        replayed = "accepted"
    except Exception as e:  # pysaml2 raises its own errors for unsolicited responses
        replayed = type(e).__name__
    print(json.dumps({"first": first, "second": second, "replayed": replayed}))


def passive(keydir, sesame):
    saml_client = client(keydir, sesame)
    browser = requests.Session()
    req_id, page = send_request(
        browser, saml_client, sesame + "/saml/metadata", BINDING_HTTP_REDIRECT, "p", is_passive="true"
    )
    acs, response, relay = posted_response(page.text)
    try:
        saml_client.parse_authn_request_response(
            response, BINDING_HTTP_POST, outstanding={req_id: relay}
        )
        status = "success"
    except Exception as e:
        status = type(e).__name__ + ": " + str(e)
    print(json.dumps({"status": status, "acs": acs}))


def logged_in(keydir, sesame, user, password):
    """Logs in over HTTP-Redirect; returns the SP's client, Sesame's entity ID, the browser
    and the SP's reading of the response."""
    saml_client = client(keydir, sesame)
    idp = sesame + "/saml/metadata"
    browser = requests.Session()
    req_id, page = send_request(browser, saml_client, idp, BINDING_HTTP_REDIRECT, "in")
    action, fields = form_of(page.text)
    fields.update({"username": user, "password": password})
    answer = browser.post(action, data=fields, timeout=10)
    _, response, relay = posted_response(answer.text)
    authn = saml_client.parse_authn_request_response(
        response, BINDING_HTTP_POST, outstanding={req_id: relay}
    )
    return saml_client, idp, browser, authn


def logout(keydir, sesame, user, password):
    from urllib.parse import parse_qs, urlparse

    saml_client, idp, browser, authn = logged_in(keydir, sesame, user, password)
    name_id = authn.assertion.subject.name_id
    # The SP's logout: a LogoutRequest to Sesame over HTTP-Redirect.
    requests_out = saml_client.global_logout(name_id)
    (binding, http_args) = requests_out[idp]
    location = dict(http_args["headers"])["Location"]
    back = browser.get(location, allow_redirects=False, timeout=10)
    assert back.status_code in (302, 303), (back.status_code, back.text[:2000])
    to_sp = back.headers["Location"]
    assert to_sp.startswith(SLO + "?"), to_sp
    query = parse_qs(urlparse(to_sp).query)
    logout_response = saml_client.parse_logout_request_response(
        query["SAMLResponse"][0], BINDING_HTTP_REDIRECT
    )
    status = logout_response.response.status.status_code.value
    signed = "Signature" in query and query["SigAlg"][0].endswith("rsa-sha256")
    # The Sesame session is over: a new request gets the login page, not an assertion.
    _, again = send_request(browser, saml_client, idp, BINDING_HTTP_REDIRECT, "again")
    _, fields = form_of(again.text)
    print(
        json.dumps(
            {
                "status": status,
                "signed": signed,
                "login_page_again": "lt" in fields and "SAMLResponse" not in fields,
                "sso_cookie_cleared": any(
                    "sesame" in c.name.lower() and c.value == "" for c in browser.cookies
                ),
            }
        )
    )


def idp_logout(keydir, sesame, user, password):
    from urllib.parse import parse_qs, urlparse

    saml_client, _, browser, authn = logged_in(keydir, sesame, user, password)
    name_id = authn.assertion.subject.name_id
    session_index = authn.assertion.authn_statement[0].session_index
    # The person logs out at Sesame: the browser is sent here first.
    out = browser.get(sesame + "/cas/logout", allow_redirects=False, timeout=10)
    assert out.status_code in (302, 303), (out.status_code, out.text[:2000])
    to_sp = out.headers["Location"]
    assert to_sp.startswith(SLO + "?"), to_sp
    query = parse_qs(urlparse(to_sp).query)
    # pysaml2 checks the request (its Redirect-binding signature against Sesame's metadata
    # key, the NameID it was given) and answers over HTTP-Redirect.
    request = saml_client.parse_logout_request(
        query["SAMLRequest"][0],
        BINDING_HTTP_REDIRECT,
        relay_state=query["RelayState"][0],
        sigalg=query["SigAlg"][0],
        signature=query["Signature"][0],
    )
    asked = request.message
    http_args = saml_client.handle_logout_request(
        query["SAMLRequest"][0],
        name_id,
        BINDING_HTTP_REDIRECT,
        sign=True,
        sign_alg=SIG_RSA_SHA256,
        relay_state=query["RelayState"][0],
        sigalg=query["SigAlg"][0],
        signature=query["Signature"][0],
    )
    back = dict(http_args["headers"])["Location"]
    assert back.startswith(sesame + "/saml/slo?"), back
    final = browser.get(back, allow_redirects=False, timeout=10)
    # Played again, the answer finds no logout under way.
    again = requests.get(back, allow_redirects=False, timeout=10)
    print(
        json.dumps(
            {
                "request_name_id": asked.name_id.text,
                "name_id": name_id.text,
                "request_session_index": asked.session_index[0].text,
                "session_index": session_index,
                "final_status": final.status_code,
                "final_location": final.headers.get("Location"),
                "final_page": final.text[:4000],
                "again_status": again.status_code,
            }
        )
    )


def unsolicited(keydir, sesame, user, password):
    saml_client = client(keydir, sesame, unsolicited=True)
    browser = requests.Session()
    page = browser.get(
        sesame + "/saml/unsolicited",
        params={"providerId": SP, "target": "portal"},
        timeout=10,
    )
    action, fields = form_of(page.text)
    assert "lt" in fields, page.text[:2000]
    fields.update({"username": user, "password": password})
    answer = browser.post(action, data=fields, timeout=10)
    acs, response, relay = posted_response(answer.text)
    assert relay == "portal", relay
    authn = saml_client.parse_authn_request_response(response, BINDING_HTTP_POST, outstanding={})
    print(
        json.dumps(
            {
                "name_id": authn.assertion.subject.name_id.text,
                "in_response_to": authn.in_response_to,
                "attributes": authn.get_identity(),
                "acs": acs,
            }
        )
    )


def main():
    mode = sys.argv[1]
    if mode == "metadata":
        make_key(sys.argv[2], "sp.example.org")
        with open(sys.argv[3], "w") as f:
            f.write(entity_descriptor(config(sys.argv[2])).to_string().decode())
    elif mode == "login":
        login(*sys.argv[2:7], len(sys.argv) > 7)
    elif mode == "passive":
        passive(sys.argv[2], sys.argv[3])
    elif mode == "logout":
        logout(*sys.argv[2:6])
    elif mode == "idp-logout":
        idp_logout(*sys.argv[2:6])
    elif mode == "unsolicited":
        unsolicited(*sys.argv[2:6])
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
