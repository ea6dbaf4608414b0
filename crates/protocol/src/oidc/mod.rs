//! OpenID Connect (OpenID Connect Core 1.0 §3.1, the authorization code flow, over RFC 6749
//! §4.1 with PKCE, RFC 7636, as RFC 9700 asks): the client registry, `/authorize` request
//! parsing and its error redirects, PKCE, and authorization codes over the shared store;
//! signing keys, their rotation and the JWKS, JWT signing and verification ([`keys`]), the
//! claims of ID, access and logout tokens ([`claims`]), and `private_key_jwt` client
//! authentication ([`client_assertion`]). The server crate maps these to routes.

pub mod authorize;
pub mod claims;
pub mod client_assertion;
pub mod clients;
pub mod codes;
pub mod discovery;
pub mod grants;
pub mod issuer;
pub mod keys;
pub mod pkce;
pub mod tokens;

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
