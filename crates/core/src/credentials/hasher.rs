//! argon2id hashing and verification, in PHC string format.
//!
//! argon2 needs `memory_kib` of working memory per hash (19 MiB at the default parameters).
//! Allocated afresh for every hash, as the argon2 crate's own `hash_password` does, that
//! memory is page-faulted in each time, and glibc keeps the freed buffers in per-thread
//! arenas: under a burst of logins on tokio's blocking threads the process grew past 1.5 GB.
//! So a thread may keep one buffer for good ([`keep_working_memory_on_this_thread`], which
//! the hashing pool's few dedicated threads do) and every hash on it reuses that buffer.

use std::cell::RefCell;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use serde::{Deserialize, Serialize};

use super::Password;

/// argon2id cost parameters. The defaults are OWASP's (m = 19456 KiB, t = 2, p = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

thread_local! {
    /// The argon2 working memory this thread keeps between hashes: `None` on threads that did
    /// not ask to keep one (they allocate per hash), empty until the thread's first hash.
    static WORKING_MEMORY: RefCell<Option<Vec<Block>>> = const { RefCell::new(None) };
}

/// Makes the calling thread keep the argon2 working memory of its first hash and reuse it for
/// every later one. For long-lived threads that only hash (the hashing pool's workers): a
/// buffer kept on a short-lived or general-purpose thread would be memory held for nothing.
pub fn keep_working_memory_on_this_thread() {
    WORKING_MEMORY.with(|memory| {
        if let Ok(mut memory) = memory.try_borrow_mut() {
            memory.get_or_insert_with(Vec::new);
        }
    });
}

/// Runs `fill` over `blocks` blocks of working memory: the thread's kept buffer when it has
/// one big enough (or none yet, sized now), else a buffer allocated for this call only. A
/// hash made under larger parameters than the kept buffer's (an old hash being verified)
/// therefore does not make the thread keep more.
fn with_working_memory<R>(blocks: usize, fill: impl FnOnce(&mut [Block]) -> R) -> R {
    WORKING_MEMORY.with(|memory| {
        let Ok(mut memory) = memory.try_borrow_mut() else {
            return fill(&mut vec![Block::default(); blocks]);
        };
        match memory.as_mut() {
            Some(kept) if kept.is_empty() => {
                kept.resize(blocks, Block::default());
                fill(kept)
            }
            Some(kept) if kept.len() >= blocks => fill(&mut kept[..blocks]),
            _ => fill(&mut vec![Block::default(); blocks]),
        }
    })
}

/// argon2 of `password` and `salt` into `out` (whose length is the hash length).
fn compute(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    with_working_memory(argon2.params().block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password, salt, out, blocks)
    })
}

/// Why hashing or verification failed (never "wrong password": that is `Ok(false)`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum HashError {
    /// The parameters are outside what argon2 accepts.
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    /// The stored hash is not a PHC string Sesame can read.
    #[error("stored password hash is malformed: {0}")]
    Malformed(String),
    /// argon2 failed.
    #[error("argon2 failed: {0}")]
    Argon2(String),
}

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    /// The password is correct.
    pub matched: bool,
    /// The hash was made with other parameters (or algorithm) than the current ones.
    pub needs_rehash: bool,
}

/// Hashes and verifies passwords with the configured argon2id parameters.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    params: Argon2Params,
    /// A hash of a random password with the current parameters: verifying against it costs
    /// exactly what a real verification costs, so an unknown login is not faster than a
    /// wrong password (security spec A01, A02).
    dummy_hash: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher with these parameters.
    ///
    /// # Errors
    /// [`HashError::Params`] if argon2 refuses the parameters.
    pub fn new(params: Argon2Params) -> Result<Self, HashError> {
        let argon_params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| HashError::Params(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
        let mut hasher = Self {
            argon2,
            params,
            dummy_hash: String::new(),
        };
        hasher.dummy_hash = hasher.hash(&Password::new(&crate::random::token()))?;
        Ok(hasher)
    }

    /// Checks parameters without building a hasher (for configuration checks).
    ///
    /// # Errors
    /// argon2's reason, as text.
    pub fn validate_params(params: Argon2Params) -> Result<(), String> {
        Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    /// The parameters in force.
    pub fn params(&self) -> Argon2Params {
        self.params
    }

    /// Hashes a password with a fresh random salt. CPU-heavy: call from a blocking thread.
    ///
    /// # Errors
    /// [`HashError::Argon2`] if argon2 fails.
    pub fn hash(&self, password: &Password) -> Result<String, HashError> {
        let argon2_error = |e: &dyn std::fmt::Display| HashError::Argon2(e.to_string());
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0_u8; 64];
        let salt_bytes = salt
            .as_salt()
            .decode_b64(&mut salt_bytes)
            .map_err(|e| argon2_error(&e))?;
        let mut out = [0_u8; Params::DEFAULT_OUTPUT_LEN];
        compute(
            &self.argon2,
            password.expose().as_bytes(),
            salt_bytes,
            &mut out,
        )
        .map_err(|e| argon2_error(&e))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(self.argon2.params()).map_err(|e| argon2_error(&e))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| argon2_error(&e))?),
        };
        Ok(phc.to_string())
    }

    /// Verifies `password` against `stored` (a PHC string), or against the dummy hash when
    /// there is no stored hash, so both paths cost the same. CPU-heavy.
    ///
    /// # Errors
    /// [`HashError::Malformed`] if `stored` is not a readable PHC string.
    pub fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<Verification, HashError> {
        let (phc, real) = match stored {
            Some(s) => (s, true),
            None => (self.dummy_hash.as_str(), false),
        };
        let malformed = |e: &dyn std::fmt::Display| HashError::Malformed(e.to_string());
        let parsed = PasswordHash::new(phc).map_err(|e| malformed(&e))?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err(HashError::Malformed("no salt or no hash".to_owned()));
        };
        let mut salt_bytes = [0_u8; 64];
        let salt_bytes = salt
            .decode_b64(&mut salt_bytes)
            .map_err(|e| malformed(&e))?;
        let mut out = [0_u8; Output::MAX_LENGTH];
        let out = out
            .get_mut(..expected.len())
            .ok_or_else(|| HashError::Malformed("hash too long".to_owned()))?;
        compute(
            &self.verifier_for(&parsed)?,
            password.expose().as_bytes(),
            salt_bytes,
            out,
        )
        .map_err(|e| HashError::Argon2(e.to_string()))?;
        // `Output`'s equality is constant-time.
        let matched = real && Output::new(out).map_err(|e| malformed(&e))? == expected;
        Ok(Verification {
            matched,
            needs_rehash: real && self.is_outdated(&parsed),
        })
    }

    /// An argon2 instance with the parameters recorded in `parsed`, so hashes made under older
    /// parameters still verify.
    fn verifier_for(&self, parsed: &PasswordHash<'_>) -> Result<Argon2<'static>, HashError> {
        let params = Params::try_from(parsed).map_err(|e| HashError::Malformed(e.to_string()))?;
        let algorithm = Algorithm::try_from(parsed.algorithm)
            .map_err(|e| HashError::Malformed(e.to_string()))?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(|e| HashError::Malformed(e.to_string()))?
            .unwrap_or(Version::V0x13);
        Ok(Argon2::new(algorithm, version, params))
    }

    fn is_outdated(&self, parsed: &PasswordHash<'_>) -> bool {
        let Ok(params) = Params::try_from(parsed) else {
            return true;
        };
        parsed.algorithm != argon2::ARGON2ID_IDENT
            || params.m_cost() != self.params.memory_kib
            || params.t_cost() != self.params.iterations
            || params.p_cost() != self.params.parallelism
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Params {
        Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[test]
    fn correct_password_verifies_and_wrong_does_not() {
        let h = PasswordHasher::new(cheap()).unwrap();
        let phc = h
            .hash(&Password::new("correct horse battery staple"))
            .unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(
            h.verify(&Password::new("correct horse battery staple"), Some(&phc))
                .unwrap()
                .matched
        );
        assert!(
            !h.verify(&Password::new("correct horse battery stapl"), Some(&phc))
                .unwrap()
                .matched
        );
        assert!(
            !h.verify(&Password::new("correct horse battery staplex"), Some(&phc))
                .unwrap()
                .matched
        );
    }

    #[test]
    fn nfc_and_nfd_spellings_verify_alike() {
        let h = PasswordHasher::new(cheap()).unwrap();
        let phc = h
            .hash(&Password::new("m\u{e9}lodie-des-c\u{e9}vennes"))
            .unwrap();
        assert!(
            h.verify(
                &Password::new("me\u{301}lodie-des-ce\u{301}vennes"),
                Some(&phc)
            )
            .unwrap()
            .matched
        );
    }

    #[test]
    fn no_stored_hash_never_matches_even_the_dummy_password() {
        let h = PasswordHasher::new(cheap()).unwrap();
        let v = h.verify(&Password::new(""), None).unwrap();
        assert!(!v.matched && !v.needs_rehash);
    }

    #[test]
    fn hashes_made_under_other_parameters_verify_and_ask_for_rehash() {
        let old = PasswordHasher::new(cheap()).unwrap();
        let phc = old.hash(&Password::new("pw-for-rehash-test")).unwrap();
        let new = PasswordHasher::new(Argon2Params {
            memory_kib: 128,
            ..cheap()
        })
        .unwrap();
        let v = new
            .verify(&Password::new("pw-for-rehash-test"), Some(&phc))
            .unwrap();
        assert!(v.matched && v.needs_rehash);
        let fresh = new.hash(&Password::new("pw-for-rehash-test")).unwrap();
        assert!(
            !new.verify(&Password::new("pw-for-rehash-test"), Some(&fresh))
                .unwrap()
                .needs_rehash
        );
    }

    #[test]
    fn hashes_are_those_of_the_argon2_crate_both_ways() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let h = PasswordHasher::new(cheap()).unwrap();
        let reference = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        );
        let ours = h.hash(&Password::new("interop-password")).unwrap();
        assert!(reference
            .verify_password(b"interop-password", &PasswordHash::new(&ours).unwrap())
            .is_ok());
        let salt = SaltString::generate(&mut OsRng);
        let theirs = reference
            .hash_password(b"interop-password", &salt)
            .unwrap()
            .to_string();
        let v = h
            .verify(&Password::new("interop-password"), Some(&theirs))
            .unwrap();
        assert!(v.matched && !v.needs_rehash);
        assert!(
            !h.verify(&Password::new("interop-passwore"), Some(&theirs))
                .unwrap()
                .matched
        );
    }

    fn kept_blocks() -> Option<usize> {
        WORKING_MEMORY.with(|m| m.borrow().as_ref().map(Vec::len))
    }

    #[test]
    fn a_keeping_thread_reuses_one_buffer_sized_by_its_first_hash() {
        std::thread::spawn(|| {
            let h = PasswordHasher::new(cheap()).unwrap();
            assert_eq!(kept_blocks(), None, "threads keep nothing unless asked");
            keep_working_memory_on_this_thread();
            let phc = h.hash(&Password::new("pw")).unwrap();
            assert_eq!(kept_blocks(), Some(64));
            assert!(h.verify(&Password::new("pw"), Some(&phc)).unwrap().matched);
            // A larger (older) hash gets a buffer of its own, and the thread keeps 64 blocks.
            let larger = PasswordHasher::new(Argon2Params {
                memory_kib: 256,
                ..cheap()
            })
            .unwrap();
            let big = larger.hash(&Password::new("pw")).unwrap();
            assert!(h.verify(&Password::new("pw"), Some(&big)).unwrap().matched);
            assert_eq!(kept_blocks(), Some(64));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn malformed_stored_hash_is_an_error_not_a_mismatch() {
        let h = PasswordHasher::new(cheap()).unwrap();
        assert!(matches!(
            h.verify(&Password::new("x"), Some("not-a-phc")),
            Err(HashError::Malformed(_))
        ));
        assert!(matches!(
            h.verify(&Password::new("x"), Some("$argon2id$v=19$m=64,t=1,p=1")),
            Err(HashError::Malformed(_))
        ));
    }
}
