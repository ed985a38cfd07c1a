//! The broker: listeners, connections, one handler module per Kafka API, long-poll fetch,
//! and the loops that drive the no-I/O cores. The only crate with a network server.

pub mod config;

pub use config::{BrokerConfig, ConfigError};
