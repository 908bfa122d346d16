//! The sessiond service: configuration, the HTTP API and the composition root that plugs the
//! adapters into the domain's ports. The binary (`main.rs`) only parses the command line.

pub mod audit;
pub mod cli;
pub mod commands;
pub mod config;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod probes;
pub mod services;
pub mod startup;
pub mod storage;
pub mod system;
pub mod telemetry;

pub use config::Settings;
pub use startup::Application;
