//! The broker: listeners, connections, one handler module per Kafka API, long-poll fetch,
//! and the loops that drive the no-I/O cores. The only crate with a network server.

mod broker;
pub mod codes;
pub mod config;
mod connection;
mod fetch_session;
mod flusher;
mod groups;
mod handlers;
mod partitions;
mod producer_state;

pub use broker::{prewarm, Broker, StartError};
pub use config::{BrokerConfig, ConfigError};
