//! The ceilings each scenario is measured against, in the same run: raw argon2id
//! verifications and RS256 signatures in this process, and a minimal actix-web server (hello
//! world, one Redis round trip per request) driven by the same load generator.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::{anyhow, Context};
use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine as _;
use jsonwebtoken::Header;
use redis::aio::ConnectionManager;
use sesame_core::credentials::hasher::Argon2Params;

use crate::procfs;

/// An in-process ceiling: completions per second, and CPU time per completion.
#[derive(Debug, Clone, Copy)]
pub struct InProcess {
    /// Completions per second, all threads.
    pub per_second: f64,
    /// CPU milliseconds per completion (this process's user + system time).
    pub cpu_ms_per_op: f64,
}

/// Runs `work` in a loop on `threads` threads for `duration`; returns completions per second
/// (each thread's count over its own elapsed time, summed) and CPU per completion.
fn per_second_on_threads(
    threads: usize,
    duration: Duration,
    work: impl Fn() -> anyhow::Result<()> + Sync,
) -> anyhow::Result<InProcess> {
    let failures = AtomicU64::new(0);
    let completed = AtomicU64::new(0);
    let ticks_before = procfs::cpu_ticks(std::process::id())?;
    let rates: Vec<f64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let start = Instant::now();
                    let mut done = 0u64;
                    while start.elapsed() < duration {
                        if work().is_err() {
                            failures.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        done += 1;
                    }
                    completed.fetch_add(done, Ordering::Relaxed);
                    done as f64 / start.elapsed().as_secs_f64()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(0.0))
            .collect()
    });
    let ticks = procfs::cpu_ticks(std::process::id())?.saturating_sub(ticks_before);
    if failures.load(Ordering::Relaxed) > 0 {
        return Err(anyhow!("the in-process ceiling failed"));
    }
    let completed = completed.load(Ordering::Relaxed).max(1);
    Ok(InProcess {
        per_second: rates.iter().sum(),
        cpu_ms_per_op: ticks as f64 * 1000.0 / procfs::clock_ticks_per_second() / completed as f64,
    })
}

/// argon2id verifications per second of `password` against `phc` (made with `params`), on
/// `threads` threads, with the argon2 crate directly.
pub fn argon2_verifications(
    params: Argon2Params,
    phc: &str,
    password: &str,
    threads: usize,
    duration: Duration,
) -> anyhow::Result<InProcess> {
    let argon2 = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| anyhow!("argon2 parameters: {e}"))?,
    );
    let parsed = PasswordHash::new(phc).map_err(|e| anyhow!("hash: {e}"))?;
    // Sanity: the password matches, by the crate's own verifier.
    argon2
        .verify_password(password.as_bytes(), &parsed)
        .map_err(|e| anyhow!("argon2: {e}"))?;
    let mut salt_buf = [0u8; 64];
    let salt = parsed
        .salt
        .ok_or_else(|| anyhow!("hash without a salt"))?
        .decode_b64(&mut salt_buf)
        .map_err(|e| anyhow!("salt: {e}"))?
        .to_vec();
    let expected = parsed
        .hash
        .ok_or_else(|| anyhow!("hash without an output"))?
        .as_bytes()
        .to_vec();
    let blocks = argon2.params().block_count();
    // Each thread keeps one working buffer, as Sesame's hashing threads do: the ceiling is
    // argon2 itself, not argon2 plus a 19 MiB allocation per verification.
    thread_local! {
        static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
    }
    per_second_on_threads(threads, duration, || {
        MEMORY.with(|memory| {
            let mut memory = memory.borrow_mut();
            if memory.len() != blocks {
                memory.resize(blocks, Block::default());
            }
            let mut out = vec![0u8; expected.len()];
            argon2
                .hash_password_into_with_memory(
                    password.as_bytes(),
                    &salt,
                    &mut out,
                    &mut memory[..],
                )
                .map_err(|e| anyhow!("argon2: {e}"))?;
            if out == expected {
                Ok(())
            } else {
                Err(anyhow!("argon2: the password does not match"))
            }
        })
    })
}

/// RS256 signatures per second (RSA 2048) of an ID-token-sized claim set, on `threads`
/// threads, made as crates/protocol signs ID tokens: the key pair parsed once by AWS-LC, then
/// for each token the header and claims serialised, base64url-encoded and signed
/// (RSASSA-PKCS1-v1_5 with SHA-256). `jsonwebtoken::encode`, which Sesame used before, parses
/// the key again at every signature, which costs about as much as the signature itself.
pub fn rs256_signatures(threads: usize, duration: Duration) -> anyhow::Result<InProcess> {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|e| anyhow!("RSA key: {e}"))?;
    let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
    header.typ = Some("JWT".to_owned());
    header.kid = Some("benchkeyid0123456789012345678901".to_owned());
    let claims = serde_json::json!({
        "iss": "http://127.0.0.1:18080",
        "sub": "0f8e6a2c-3b1d-4c5e-9f7a-2b6c8d0e1f3a",
        "aud": "bench-rp",
        "exp": 1_900_000_300,
        "iat": 1_900_000_000,
        "auth_time": 1_899_999_000,
        "nonce": "n1",
        "amr": ["pwd"],
        "at_hash": "x4Qbk0cJ6m1l2D3V6b9bFQ",
        "sid": "5b9c2d8e0f1a3b4c5d6e7f8091a2b3c4",
        "azp": "bench-rp",
        "name": "Bench User0000001",
        "given_name": "Bench",
        "family_name": "User0000001",
        "preferred_username": "bench.0000001",
        "locale": "fr",
        "email": "bench.0000001@univ.example.org",
        "email_verified": true,
    });
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    per_second_on_threads(threads, duration, || {
        let mut token = b64.encode(serde_json::to_vec(&header)?);
        token.push('.');
        b64.encode_string(serde_json::to_vec(&claims)?, &mut token);
        let mut signature = vec![0; pair.public_modulus_len()];
        pair.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            token.as_bytes(),
            &mut signature,
        )
        .map_err(|e| anyhow!("RS256: {e}"))?;
        token.push('.');
        b64.encode_string(signature, &mut token);
        Ok(())
    })
}

/// Where the one Redis round trip of `/redis` reads.
struct RedisTarget {
    conn: ConnectionManager,
    key: String,
}

async fn hello() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain")
        .body("hello world")
}

async fn one_round_trip(target: web::Data<RedisTarget>) -> HttpResponse {
    let mut conn = target.conn.clone();
    let answer: redis::RedisResult<Option<String>> = redis::cmd("GET")
        .arg(&target.key)
        .query_async(&mut conn)
        .await;
    match answer {
        Ok(_) => HttpResponse::Ok()
            .content_type("text/plain")
            .body("redis ok"),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

/// The ceiling server: `GET /hello` (hello world) and `GET /redis` (one Redis `GET`), with
/// one actix worker per core like Sesame, its Redis connection manager on the main runtime
/// like Sesame's store.
///
/// # Errors
/// When Redis or the listener cannot be set up.
pub async fn serve(listen: &str, redis_url: &str, key_prefix: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(redis_url).context("redis URL")?;
    let conn = ConnectionManager::new(client)
        .await
        .context("connecting to Redis")?;
    let target = web::Data::new(RedisTarget {
        conn,
        key: format!("{key_prefix}ceiling"),
    });
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    HttpServer::new(move || {
        App::new()
            .app_data(target.clone())
            .route("/hello", web::get().to(hello))
            .route("/redis", web::get().to(one_round_trip))
    })
    .workers(workers)
    .bind(listen)
    .with_context(|| format!("binding {listen}"))?
    .run()
    .await
    .context("ceiling server")
}
