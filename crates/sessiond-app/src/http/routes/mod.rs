//! One module per resource.

pub mod account;
pub mod auth;
pub mod health;
pub mod sessions;
