//! A login in progress, as domain data: how a person authenticated ([`methods`]), whether
//! that is enough for what is asked ([`requirement`]), what the login is for and what it has
//! done so far ([`transaction`]), and what remains between "password correct" and "session
//! open" ([`steps`]).
//!
//! Nothing here knows HTTP: the server binds a transaction to a browser with a cookie, and
//! time is always an input. ADR 0013 explains the design.

pub mod methods;
pub mod requirement;
pub mod steps;
pub mod transaction;
