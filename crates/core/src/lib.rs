#![doc = include_str!("../README.md")]

pub mod account;
pub mod accounts;
pub mod audit;
pub mod authn;
pub mod clock;
pub mod credentials;
pub mod error;
pub mod helpdesk;
pub mod i18n;
pub mod ids;
pub mod lockout;
pub mod mail;
pub mod national_id;
pub mod ports;
pub mod random;
pub mod session;
