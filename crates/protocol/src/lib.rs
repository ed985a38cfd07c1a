//! Kafka wire protocol: request/response types generated from the message specs, frame codec.
