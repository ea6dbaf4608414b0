//! TOTP (RFC 6238) as authenticator apps read it: HMAC-SHA-1, 6 digits, 30-second steps,
//! 160-bit secrets (RFC 4226 § 4), a code of the previous or next step accepted for clock drift
//! (RFC 6238 § 5.2, "at most one time step"), and every accepted code refused afterwards.
//!
//! A code accepted at step `s` also retires every earlier step of the window: someone who
//! watched an older, unused code cannot play it after the person logged in with a newer one.

use std::time::Duration;

use sesame_core::error::StoreError;
use sesame_core::ids::AccountId;
use sesame_core::ports::EphemeralStore;
use time::OffsetDateTime;
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Seconds per step (RFC 6238's default, and the only value every app supports).
pub const STEP_SECS: u64 = 30;
/// Digits per code.
pub const DIGITS: u8 = 6;
/// Steps of drift accepted either way.
pub const SKEW_STEPS: u16 = 1;
/// Secret length in bytes (160 bits, RFC 4226 § 4).
pub const SECRET_LEN: usize = 20;

/// Why a TOTP secret could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    /// The secret is not 160 bits, or the names do not fit an `otpauth://` URI.
    #[error("invalid TOTP parameters: {0}")]
    Invalid(String),
}

/// A person's TOTP secret, in the clear: only ever in memory, sealed at rest
/// ([`crate::sealing`]).
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(…)")
    }
}

impl TotpSecret {
    /// A fresh secret from the OS random source.
    ///
    /// # Panics
    /// Panics if the operating system's random source fails, as every token of Sesame does.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_LEN];
        #[expect(
            clippy::expect_used,
            reason = "no safe way to continue without the OS random source"
        )]
        getrandom::getrandom(&mut bytes).expect("the OS random number generator failed");
        Self(bytes)
    }

    /// A secret from its bytes (unsealed from storage).
    ///
    /// # Errors
    /// [`TotpError::Invalid`] unless it is [`SECRET_LEN`] bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, TotpError> {
        if bytes.len() != SECRET_LEN {
            return Err(TotpError::Invalid(format!(
                "a secret is {SECRET_LEN} bytes, not {}",
                bytes.len()
            )));
        }
        Ok(Self(bytes))
    }

    /// The bytes, to be sealed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret as people type it into an app that cannot scan: base32, no padding, in
    /// groups of four.
    pub fn as_typed(&self) -> String {
        let encoded = Secret::from(self.0.clone()).to_base32();
        let chars: Vec<char> = encoded.trim_end_matches('=').chars().collect();
        chars
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn totp(&self, issuer: Option<&str>, account: &str) -> Result<Totp, TotpError> {
        let mut builder = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_skew(SKEW_STEPS)
            .with_step_duration(STEP_SECS)
            .with_secret(self.0.clone())
            .with_account_name(account.replace(':', " "));
        if let Some(issuer) = issuer {
            builder = builder.with_issuer(Some(issuer.replace(':', " ")));
        }
        builder
            .build()
            .map_err(|e| TotpError::Invalid(e.to_string()))
    }

    /// The `otpauth://totp/…` URI an app scans: the institution as issuer, the login as
    /// account name (a `:` in either, which the format reserves, becomes a space).
    ///
    /// # Errors
    /// [`TotpError::Invalid`] if the names cannot be written in the URI.
    pub fn otpauth_uri(&self, issuer: &str, login: &str) -> Result<String, TotpError> {
        self.totp(Some(issuer), login)?
            .to_url()
            .map_err(|e| TotpError::Invalid(e.to_string()))
    }

    /// The code of the step `at` falls in (what the app shows then).
    ///
    /// # Errors
    /// [`TotpError::Invalid`] as [`Self::from_bytes`].
    pub fn code_at(&self, at: OffsetDateTime) -> Result<String, TotpError> {
        Ok(self.totp(None, "")?.generate(unix_secs(at)).to_string())
    }

    /// The step a typed code belongs to if it is the code of the current step or of one step
    /// either side; spaces the person typed are ignored. It does not say whether the step was
    /// used already: [`UsedSteps::claim`] does.
    pub fn matching_step(&self, typed: &str, at: OffsetDateTime) -> Option<u64> {
        let code: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.totp(None, "").ok()?.check(&code, unix_secs(at))
    }
}

/// The QR code of an `otpauth://` URI as an inline SVG image (no raster library, no request to
/// a QR service: the secret never leaves Sesame), with its quiet zone, black on white.
///
/// # Errors
/// [`TotpError::Invalid`] if the URI does not fit in a QR code.
pub fn qr_svg(uri: &str) -> Result<String, TotpError> {
    let code = qrcode::QrCode::with_error_correction_level(uri, qrcode::EcLevel::M)
        .map_err(|e| TotpError::Invalid(e.to_string()))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .quiet_zone(true)
        .build())
}

fn unix_secs(at: OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp()).unwrap_or(0)
}

/// The record of TOTP steps already used per account, in the ephemeral store so that every
/// instance sees it: a code is accepted once, and never one older than the last accepted.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsedSteps;

impl UsedSteps {
    fn key(account: AccountId, step: u64) -> String {
        format!("mfa:totp-used:{account}:{step}")
    }

    /// How long a used step must be remembered: until no clock can accept it any more.
    fn ttl() -> Duration {
        Duration::from_secs(STEP_SECS * (2 * u64::from(SKEW_STEPS) + 2))
    }

    /// Claims `step` for `account`: `true` for the one caller that claims it first, `false` for
    /// a replay (the same code again, from anywhere) or for a step at or before one used since.
    ///
    /// # Errors
    /// [`StoreError`] if the store cannot answer: the caller refuses the code (fail closed).
    pub async fn claim(
        &self,
        store: &dyn EphemeralStore,
        account: AccountId,
        step: u64,
    ) -> Result<bool, StoreError> {
        // A later step already used retires this one.
        for later in step + 1..=step + 2 * u64::from(SKEW_STEPS) {
            if store.get(&Self::key(account, later)).await?.is_some() {
                return Ok(false);
            }
        }
        if !store
            .put_new(&Self::key(account, step), "used", Self::ttl())
            .await?
        {
            return Ok(false);
        }
        // Retire the earlier steps of the window: an older code seen over a shoulder is dead.
        for earlier in step.saturating_sub(2 * u64::from(SKEW_STEPS))..step {
            store
                .put(&Self::key(account, earlier), "retired", Self::ttl())
                .await?;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sesame_store::MemoryStore;
    use time::macros::datetime;

    /// RFC 6238 appendix B's SHA-1 secret ("12345678901234567890") and its 8-digit codes,
    /// whose last six digits are the 6-digit codes.
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap()
    }

    #[test]
    fn the_codes_are_those_of_rfc_6238_appendix_b() {
        let s = rfc_secret();
        for (at, code8) in [
            (datetime!(1970-01-01 00:00:59 UTC), "94287082"),
            (datetime!(2005-03-18 01:58:29 UTC), "07081804"),
            (datetime!(2009-02-13 23:31:30 UTC), "89005924"),
            (datetime!(2033-05-18 03:33:20 UTC), "69279037"),
        ] {
            assert_eq!(s.code_at(at).unwrap(), code8[2..], "{at}");
        }
    }

    #[test]
    fn one_step_of_drift_either_way_and_no_more() {
        let s = rfc_secret();
        let now = datetime!(2026-12-06 10:00:15 UTC);
        let step = u64::try_from(now.unix_timestamp()).unwrap() / STEP_SECS;
        for (offset, accepted) in [
            (-60, false),
            (-30, true),
            (0, true),
            (30, true),
            (60, false),
        ] {
            let code = s.code_at(now + time::Duration::seconds(offset)).unwrap();
            let found = s.matching_step(&code, now);
            if accepted {
                let expected = step.checked_add_signed(offset / 30).unwrap();
                assert_eq!(found, Some(expected), "offset {offset}");
            } else {
                assert_eq!(found, None, "offset {offset}");
            }
        }
    }

    #[test]
    fn spaces_are_ignored_and_anything_else_is_no_code() {
        let s = rfc_secret();
        let now = datetime!(2026-12-06 10:00:15 UTC);
        let code = s.code_at(now).unwrap();
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert!(s.matching_step(&spaced, now).is_some());
        for typed in ["", "12345", "1234567", "12345a", "١٢٣٤٥٦"] {
            assert_eq!(s.matching_step(typed, now), None, "{typed}");
        }
    }

    #[test]
    fn the_uri_names_the_institution_and_the_login_and_carries_the_secret() {
        let s = rfc_secret();
        let uri = s.otpauth_uri("Université Exemple", "jean.dupont").unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(uri.contains("jean.dupont"), "{uri}");
        assert!(uri.contains("issuer=Universit"), "{uri}");
        let typed: String = s.as_typed().split(' ').collect();
        assert!(uri.contains(&format!("secret={typed}")), "{uri}");
        assert!(
            !format!("{s:?}").contains(&typed),
            "the secret never reaches a log"
        );
    }

    #[test]
    fn the_qr_code_is_an_svg_image() {
        let uri = rfc_secret()
            .otpauth_uri("Université Exemple", "jean.dupont")
            .unwrap();
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.contains("<svg"), "{svg}");
        assert!(svg.contains("#000000"));
        assert!(qr_svg(&"x".repeat(5000)).is_err(), "too long for a QR code");
    }

    #[test]
    fn a_secret_of_the_wrong_length_is_refused() {
        assert!(TotpSecret::from_bytes(vec![0; 10]).is_err());
        assert_eq!(TotpSecret::generate().as_bytes().len(), SECRET_LEN);
        assert_ne!(TotpSecret::generate(), TotpSecret::generate());
    }

    #[tokio::test]
    async fn a_step_is_claimed_once_and_a_newer_one_retires_the_older() {
        let store = MemoryStore::new();
        let account = AccountId::new_random();
        let other = AccountId::new_random();
        let used = UsedSteps;
        assert!(used.claim(&store, account, 100).await.unwrap());
        assert!(!used.claim(&store, account, 100).await.unwrap(), "replay");
        assert!(!used.claim(&store, account, 99).await.unwrap(), "older");
        assert!(used.claim(&store, account, 101).await.unwrap(), "next step");
        assert!(!used.claim(&store, account, 100).await.unwrap());
        assert!(used.claim(&store, other, 100).await.unwrap(), "per account");
    }

    #[tokio::test]
    async fn of_many_parallel_claims_of_one_step_exactly_one_wins() {
        let store = std::sync::Arc::new(MemoryStore::new());
        let account = AccountId::new_random();
        let claims = (0..32).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { UsedSteps.claim(store.as_ref(), account, 7).await })
        });
        let mut won = 0;
        for claim in claims {
            if claim.await.unwrap().unwrap() {
                won += 1;
            }
        }
        assert_eq!(won, 1);
    }
}
