#![doc = include_str!("../README.md")]

mod conn;
mod ephemeral;
mod error;
mod migrations;
mod models;
mod schema;
mod sql;
pub mod testing;

pub use crate::conn::DatabaseBackend;
pub use crate::ephemeral::{
    MemoryStore, RedisStore, RedisTarget, RedisTls, RedisTlsError, TlsFile,
};
pub use crate::error::{BoxError, StoreSetupError};
pub use crate::sql::Database;
