#![doc = include_str!("../README.md")]

pub mod activation;
pub mod admin;
pub mod blocking;
pub mod error;
pub mod helpdesk;
pub mod import;
pub mod login;
pub mod recovery;
pub mod self_service;
