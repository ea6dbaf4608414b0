//! The pieces of `make bench` that other tools reuse: the HTTP/1.1 connection, the server
//! processes and configuration, the seeded accounts and the registered site, the load
//! generator. `make faults` (crates/faults) drives Sesame with them too.

pub mod aggregate;
pub mod balancer;
pub mod gen;
pub mod http;
pub mod import;
pub mod infra;
pub mod ldap;
pub mod procfs;
pub mod scenarios;
