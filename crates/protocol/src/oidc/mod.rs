//! OpenID Connect (OpenID Connect Core 1.0 §3.1, the authorization code flow, over RFC 6749
//! §4.1 with PKCE, RFC 7636, as RFC 9700 asks): the client registry, `/authorize` request
//! parsing and its error redirects, PKCE, and authorization codes over the shared store. The
//! server crate maps these to routes. ID tokens, signing keys and the token endpoint's
//! responses are not here yet.

pub mod authorize;
pub mod clients;
pub mod codes;
pub mod discovery;
pub mod pkce;

/// Longest value accepted for any `/authorize` or token-endpoint parameter, in bytes.
pub const MAX_PARAMETER_BYTES: usize = 4096;

/// The scope every OpenID Connect request carries (OpenID Connect Core 1.0 §3.1.2.1).
pub const OPENID_SCOPE: &str = "openid";

/// `scope-token` of RFC 6749 §3.3: one or more of `%x21 / %x23-5B / %x5D-7E`.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}
