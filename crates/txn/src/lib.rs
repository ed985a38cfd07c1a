//! Producer ids and the idempotent producer, without I/O.
//!
//! - [`ProducerIdManager`] hands out producer ids from blocks the controller assigns to this
//!   broker and answers InitProducerId.
//! - [`ProducerStateTable`] is one partition's producer state: it decides whether a client's
//!   batch is appended, answered as a duplicate with its original offsets, or refused
//!   (OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, ...), records appended batches,
//!   rebuilds itself from the log's batch headers, expires idle producers, and is saved and
//!   loaded as a checksummed snapshot.
//!
//! Time is an input (`now_ms`), the log is an input (headers and offsets), and nothing here
//! panics on bytes read from the network or from disk. Transactions (coordinator, markers,
//! last stable offset) are not implemented yet: the state tracks a producer's open
//! transaction so that the format and the rules need not change when they are.
//!
//! The rules and the snapshot format are documented in `docs/design/txn.md`.

pub mod codes;
mod error;
mod producer_id;
pub mod sequence;
mod snapshot;
mod state;

pub use error::ProducerError;
pub use producer_id::{
    BlockError, InitProducerIdError, InitProducerIdRequest, NeedBlock, ProducerIdAndEpoch,
    ProducerIdManager, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, TRANSACTION_MAX_TIMEOUT_MS_DEFAULT,
};
pub use snapshot::{DecodedSnapshot, SnapshotError, SNAPSHOT_MAGIC, SNAPSHOT_VERSION};
pub use state::{
    AppendDecision, BatchMetadata, ProducerBatch, ProducerEntry, ProducerStateConfig,
    ProducerStateTable, BATCHES_RETAINED, PRODUCER_ID_EXPIRATION_MS_DEFAULT,
};

#[cfg(test)]
mod tests;
