#![doc = include_str!("../README.md")]

pub mod blocking;
pub mod error;
pub mod helpdesk;
pub mod import;
pub mod login;
