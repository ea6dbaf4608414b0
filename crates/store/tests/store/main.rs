//! The storage tests: every repository test body runs on SQLite and PostgreSQL, every
//! ephemeral-store test body on `MemoryStore` and Redis (see the crate README for the
//! skip-or-fail rule when a service is not running).

#[cfg(test)]
mod api_keys;
#[cfg(test)]
mod devices;
#[cfg(test)]
mod ephemeral;
#[cfg(test)]
mod helpdesk;
#[cfg(test)]
mod mail;
#[cfg(test)]
mod oidc;
#[cfg(test)]
mod profiles;
#[cfg(test)]
mod recovery;
#[cfg(test)]
mod redis_sentinel;
#[cfg(test)]
mod redis_servers;
#[cfg(test)]
mod redis_tls;
#[cfg(test)]
mod repo;
#[cfg(test)]
mod second_factors;
