"""Interop: python-cas (PyPI, not written here) logs a person in through Sesame's login page.

Usage: python_cas_login.py BASE_URL SERVICE_URL LOGIN PASSWORD VERSION
VERSION is 1, 2, 3 or CAS_2_SAML_1_0. Prints one JSON line: the user and attributes that
python-cas read from Sesame's validation response.
"""
import json
import re
import sys
from urllib.parse import parse_qs, urlparse

import requests
from cas import CASClient


def main():
    base, service, login, password, version = sys.argv[1:6]
    client = CASClient(
        version=int(version) if version.isdigit() else version,
        service_url=service,
        server_url=base + "/cas/",
    )
    browser = requests.Session()
    login_url = client.get_login_url()
    page = browser.get(login_url, allow_redirects=False)
    page.raise_for_status()
    lt = re.search(r'name="lt" value="([^"]+)"', page.text).group(1)
    answer = browser.post(
        login_url,
        data={"lt": lt, "username": login, "password": password},
        allow_redirects=False,
    )
    if answer.status_code not in (302, 303):
        raise SystemExit(f"login answered {answer.status_code}")
    location = answer.headers["Location"]
    if not location.startswith(service.split("?")[0]):
        raise SystemExit(f"redirected elsewhere: {location}")
    ticket = parse_qs(urlparse(location).query)["ticket"][0]
    user, attributes, _pgtiou = client.verify_ticket(ticket)
    replay_user, _, _ = client.verify_ticket(ticket)
    print(json.dumps({"user": user, "attributes": attributes or {}, "replay_user": replay_user}))


if __name__ == "__main__":
    main()
