#![doc = include_str!("../README.md")]

pub mod account;
pub mod account_marks;
pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod authn;
pub mod clock;
pub mod credentials;
pub mod devices;
pub mod error;
pub mod helpdesk;
pub mod i18n;
pub mod ids;
pub mod lockout;
pub mod login;
pub mod mail;
pub mod national_id;
pub mod ports;
pub mod random;
pub mod session;
pub mod sms;
#[cfg(test)]
pub(crate) mod testing;
