//! Proof Key for Code Exchange (RFC 7636), checked at `/authorize` (the challenge, §4.3) and
//! at the token endpoint (the verifier, §4.5–4.6). Only `S256` is supported: `plain` is
//! refused (RFC 9700 §2.1.1; security row A23), and so is a challenge without a method, which
//! §4.3 defines as `plain`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The only `code_challenge_method` Sesame accepts.
pub const S256: &str = "S256";

/// Shortest `code_verifier` (RFC 7636 §4.1).
pub const MIN_VERIFIER_CHARS: usize = 43;

/// Longest `code_verifier` (RFC 7636 §4.1).
pub const MAX_VERIFIER_CHARS: usize = 128;

/// Length of an `S256` challenge: 32 bytes in unpadded base64url.
pub const S256_CHALLENGE_CHARS: usize = 43;

/// Why a PKCE parameter was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    /// `code_challenge_method` is `plain`, absent (which means `plain`), or unknown.
    #[error("code_challenge_method must be S256")]
    UnsupportedMethod,
    /// `code_challenge` is not 43 characters of unpadded base64url.
    #[error("code_challenge is not a base64url SHA-256 value")]
    MalformedChallenge,
    /// `code_verifier` is not 43 to 128 unreserved characters (RFC 7636 §4.1).
    #[error("code_verifier does not follow RFC 7636 section 4.1")]
    MalformedVerifier,
    /// The verifier does not hash to the challenge.
    #[error("code_verifier does not match code_challenge")]
    Mismatch,
}

/// Checks `code_challenge_method` as sent at `/authorize`: only `Some("S256")` passes.
///
/// # Errors
/// [`PkceError::UnsupportedMethod`] for `plain`, an absent method or anything else.
pub fn check_method(method: Option<&str>) -> Result<(), PkceError> {
    match method {
        Some(S256) => Ok(()),
        _ => Err(PkceError::UnsupportedMethod),
    }
}

/// Checks the syntax of an `S256` `code_challenge`: exactly 43 characters of the base64url
/// alphabet, without padding.
///
/// # Errors
/// [`PkceError::MalformedChallenge`].
pub fn check_challenge(challenge: &str) -> Result<(), PkceError> {
    let ok = challenge.len() == S256_CHALLENGE_CHARS
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && URL_SAFE_NO_PAD
            .decode(challenge)
            .is_ok_and(|bytes| bytes.len() == 32);
    if ok {
        Ok(())
    } else {
        Err(PkceError::MalformedChallenge)
    }
}

/// `code-verifier = 43*128unreserved`, `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"`.
pub fn is_valid_verifier(verifier: &str) -> bool {
    (MIN_VERIFIER_CHARS..=MAX_VERIFIER_CHARS).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The `S256` challenge of `verifier`: `BASE64URL(SHA256(ASCII(verifier)))` (§4.2).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Checks a `code_verifier` against the stored `S256` challenge (§4.6), comparing in
/// constant time.
///
/// # Errors
/// [`PkceError::MalformedVerifier`] if the verifier breaks §4.1 (checked first, so no
/// hashing of arbitrary input), [`PkceError::Mismatch`] otherwise on failure.
pub fn verify(verifier: &str, challenge: &str) -> Result<(), PkceError> {
    if !is_valid_verifier(verifier) {
        return Err(PkceError::MalformedVerifier);
    }
    let computed = s256_challenge(verifier);
    if bool::from(computed.as_bytes().ct_eq(challenge.as_bytes())) {
        Ok(())
    } else {
        Err(PkceError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc_7636_appendix_b() {
        let octets: [u8; 32] = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        assert_eq!(URL_SAFE_NO_PAD.encode(octets), VERIFIER);
        assert_eq!(s256_challenge(VERIFIER), CHALLENGE);
        assert_eq!(check_challenge(CHALLENGE), Ok(()));
        assert_eq!(verify(VERIFIER, CHALLENGE), Ok(()));
    }

    #[test]
    fn wrong_or_malformed_verifiers_fail() {
        let other = format!("{}A", &VERIFIER[..42]);
        assert_eq!(verify(&other, CHALLENGE), Err(PkceError::Mismatch));
        // `plain` semantics: the challenge itself as verifier.
        assert_eq!(verify(CHALLENGE, CHALLENGE), Err(PkceError::Mismatch));
        assert_eq!(
            verify(&VERIFIER[..42], CHALLENGE),
            Err(PkceError::MalformedVerifier)
        );
        assert_eq!(
            verify(&"a".repeat(129), CHALLENGE),
            Err(PkceError::MalformedVerifier)
        );
        assert_eq!(
            verify(&format!("{VERIFIER}+"), CHALLENGE),
            Err(PkceError::MalformedVerifier)
        );
        assert_eq!(
            verify(&format!("{VERIFIER} "), CHALLENGE),
            Err(PkceError::MalformedVerifier)
        );
        assert!(is_valid_verifier(&"a-._~".repeat(25)));
        assert!(is_valid_verifier(&"Z".repeat(43)));
        assert!(!is_valid_verifier(&"é".repeat(43)));
    }

    #[test]
    fn only_s256_is_accepted() {
        assert_eq!(check_method(Some("S256")), Ok(()));
        for refused in [None, Some("plain"), Some("s256"), Some(""), Some("S512")] {
            assert_eq!(
                check_method(refused),
                Err(PkceError::UnsupportedMethod),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn challenge_syntax() {
        for bad in [
            "",
            &CHALLENGE[..42],
            &format!("{CHALLENGE}="),
            &format!("{}+", &CHALLENGE[..42]),
            &format!("{}/", &CHALLENGE[..42]),
            VERIFIER.trim_end_matches('k'),
            &"a".repeat(128),
        ] {
            assert_eq!(
                check_challenge(bad),
                Err(PkceError::MalformedChallenge),
                "{bad:?}"
            );
        }
    }
}
