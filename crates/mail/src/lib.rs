#![doc = include_str!("../README.md")]

pub mod error;
pub mod mailer;
pub mod message;
pub mod outbox;
pub mod smtp;
pub mod templates;
pub mod transport;
pub mod worker;
