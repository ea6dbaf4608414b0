//! Security spec C13: a million service tickets, authorization codes and SSO session ids,
//! generated as Sesame generates them, hold no duplicate, carry at least 128 bits, and keep
//! to the CAS charset.

use std::collections::HashSet;

use sesame_core::random;
use sesame_protocol::cas::tickets::{new_ticket_id, TicketKind, TICKET_RANDOM_CHARS};
use sesame_protocol::oidc::codes::CODE_CHARS;

const COUNT: usize = 1_000_000;

/// Bits of entropy of `chars` characters drawn uniformly from 62 symbols.
fn bits(chars: usize) -> f64 {
    chars as f64 * 62f64.log2()
}

/// Generates `COUNT` ids and checks them; `prefix` is the fixed part before the random one.
fn check_million(what: &str, make: impl Fn() -> String, prefix: &str, random_chars: usize) {
    assert!(
        bits(random_chars) >= 128.0,
        "{what}: {random_chars} characters"
    );
    let mut seen: HashSet<String> = HashSet::with_capacity(COUNT);
    for i in 0..COUNT {
        let id = make();
        let random_part = id
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{what}: {id} lacks {prefix}"));
        assert_eq!(random_part.len(), random_chars, "{what}: {id}");
        assert!(
            id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "{what}: {id} leaves [A-Za-z0-9-]"
        );
        assert!(
            seen.insert(random_part.to_owned()),
            "{what}: duplicate {id} at {i}"
        );
    }
    assert_eq!(seen.len(), COUNT, "{what}: duplicates");
}

#[test]
fn c13_a_million_service_tickets_are_distinct_long_and_in_the_cas_charset() {
    check_million(
        "service ticket",
        || new_ticket_id(TicketKind::Service),
        "ST-",
        TICKET_RANDOM_CHARS,
    );
}

#[test]
fn c13_a_million_authorization_codes_are_distinct_and_long() {
    check_million(
        "authorization code",
        || random::alphanumeric(CODE_CHARS),
        "",
        CODE_CHARS,
    );
}

#[test]
fn c13_a_million_sso_session_ids_are_distinct_and_long() {
    check_million("SSO session id", random::token, "", 43);
}
