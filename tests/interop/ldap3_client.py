"""An LDAP client not written here (python ldap3, from PyPI) against Sesame's LDAP interface.

Usage: ldap3_client.py URL REQUEST_JSON

REQUEST_JSON: {"bind_dn": "...", "password": "...", "start_tls": false, "ca_file": null,
               "searches": [{"base": "...", "filter": "(...)", "scope": "sub",
                             "attributes": ["*"], "paged_size": null, "size_limit": 0}]}

Prints one JSON object: the bind's result and, for each search, its entries (DN and
attributes), its result code and, for a paged search, the number of pages it took.
"""

import json
import ssl
import sys

import ldap3
from ldap3.core.exceptions import LDAPException

SCOPES = {"base": ldap3.BASE, "one": ldap3.LEVEL, "sub": ldap3.SUBTREE}


def main():
    url = sys.argv[1]
    request = json.loads(sys.argv[2])
    tls = None
    if request.get("ca_file"):
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=request["ca_file"])
    server = ldap3.Server(url, get_info=ldap3.NONE, tls=tls)
    conn = ldap3.Connection(
        server,
        user=request.get("bind_dn") or None,
        password=request.get("password") or None,
        raise_exceptions=False,
        auto_referrals=False,
    )
    conn.open()
    out = {}
    if request.get("start_tls"):
        out["start_tls"] = conn.start_tls()
    if request.get("bind_dn") is not None:
        conn.bind()
        out["bind"] = {
            "result": conn.result.get("result"),
            "message": conn.result.get("message"),
        }
    searches = []
    for s in request.get("searches", []):
        entries, pages, result = [], 0, None
        cookie = None
        while True:
            controls = None
            kwargs = {}
            if s.get("paged_size"):
                kwargs = {"paged_size": s["paged_size"], "paged_cookie": cookie}
            try:
                conn.search(
                    s["base"],
                    s["filter"],
                    search_scope=SCOPES[s.get("scope", "sub")],
                    attributes=s.get("attributes", ["*"]),
                    size_limit=s.get("size_limit", 0),
                    controls=controls,
                    **kwargs,
                )
            except LDAPException as e:
                result = {"result": -1, "message": str(e)}
                break
            pages += 1
            for e in conn.response or []:
                if e.get("type") != "searchResEntry":
                    continue
                attrs = {
                    k: [v.decode() if isinstance(v, bytes) else str(v) for v in vs]
                    for k, vs in e["raw_attributes"].items()
                    for vs in [vs]
                }
                entries.append({"dn": e["dn"], "attributes": attrs})
            result = {
                "result": conn.result.get("result"),
                "message": conn.result.get("message"),
            }
            if not s.get("paged_size") or result["result"] != 0:
                break
            cookie = (
                conn.result.get("controls", {})
                .get("1.2.840.113556.1.4.319", {})
                .get("value", {})
                .get("cookie")
            )
            if not cookie:
                break
        searches.append({"entries": entries, "pages": pages, **result})
    out["searches"] = searches
    conn.unbind()
    print(json.dumps(out))


main()
