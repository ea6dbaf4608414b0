//! One test binary for the whole end-to-end suite.

mod browser;
mod cli;
mod health;
mod lockout;
mod login;
mod sessions;
