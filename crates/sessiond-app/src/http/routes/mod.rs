//! One module per resource.

pub mod account;
pub mod admin;
pub mod auth;
pub mod health;
pub mod metrics;
pub mod sessions;
pub mod ui;
pub mod web;
