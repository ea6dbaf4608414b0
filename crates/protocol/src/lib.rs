#![doc = include_str!("../README.md")]

pub mod attributes;
pub mod cas;
pub mod issuer;
pub mod oidc;
pub mod saml;
pub mod services;
