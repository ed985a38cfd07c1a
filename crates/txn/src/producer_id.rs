//! Producer ids for InitProducerId, handed out from blocks the controller assigns to this
//! broker (a `ProducerIdsBlock` record in the metadata log, see
//! `freshet_metadata::allocate_producer_ids`).
//!
//! The manager never asks for a block itself: it says when it wants one
//! ([`ProducerIdManager::wants_block`]) and the broker proposes the allocation, then passes
//! the block it was given to [`ProducerIdManager::add_block`]. Like Kafka's
//! `RPCProducerIdManager`, it asks for the next block when 90% of the current one is used, so
//! that producers rarely see [`InitProducerIdError::NoProducerIdBlock`].

use std::fmt;

use crate::codes;

/// "No producer id" in requests, responses and batch headers.
pub const NO_PRODUCER_ID: i64 = -1;
/// "No producer epoch" in requests, responses and batch headers.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// Kafka's `transaction.max.timeout.ms` default (15 minutes).
pub const TRANSACTION_MAX_TIMEOUT_MS_DEFAULT: i32 = 900_000;
/// Share of a block handed out, in percent, after which the next block is wanted (Kafka's
/// `ProducerIdManager.PidPrefetchThreshold` is 0.90).
const PREFETCH_PERCENT: i64 = 90;

/// [`ProducerIdManager::next_id`] has no id left: the broker must obtain a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeedBlock;

/// Why [`ProducerIdManager::add_block`] refused a block (a controller or wiring bug: the
/// block is ignored, as Kafka's `RPCProducerIdManager` ignores a bad AllocateProducerIds
/// response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockError {
    /// Negative first id, non-positive size, or a range that overflows `i64`.
    InvalidRange {
        first_producer_id: i64,
        block_size: i32,
    },
    /// The block starts below ids this manager already had: handing them out twice would
    /// give two producers the same id.
    NotMonotonic {
        first_producer_id: i64,
        lowest_allowed: i64,
    },
    /// A spare block is already waiting; this one was never asked for.
    SpareAlreadyHeld,
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::InvalidRange {
                first_producer_id,
                block_size,
            } => write!(
                f,
                "invalid producer id block: first {first_producer_id}, size {block_size}"
            ),
            BlockError::NotMonotonic {
                first_producer_id,
                lowest_allowed,
            } => write!(
                f,
                "producer id block at {first_producer_id} is below {lowest_allowed}, already used"
            ),
            BlockError::SpareAlreadyHeld => write!(f, "a spare producer id block is already held"),
        }
    }
}

impl std::error::Error for BlockError {}

/// A half-open range of unused ids, `next..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IdRange {
    next: i64,
    end: i64,
    /// Once `next` reaches this id, the next block is wanted.
    prefetch_at: i64,
}

impl IdRange {
    const EMPTY: IdRange = IdRange {
        next: 0,
        end: 0,
        prefetch_at: 0,
    };

    fn new(first: i64, end: i64) -> IdRange {
        let size = end - first;
        IdRange {
            next: first,
            end,
            prefetch_at: first + size * PREFETCH_PERCENT / 100,
        }
    }

    fn is_exhausted(&self) -> bool {
        self.next >= self.end
    }
}

/// An InitProducerId request, as decoded by the protocol layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitProducerIdRequest<'a> {
    /// `None` for an idempotent (non-transactional) producer.
    pub transactional_id: Option<&'a str>,
    pub transaction_timeout_ms: i32,
    /// The producer's current id (v3+, KIP-360), or [`NO_PRODUCER_ID`].
    pub producer_id: i64,
    /// The producer's current epoch (v3+, KIP-360), or [`NO_PRODUCER_EPOCH`].
    pub producer_epoch: i16,
}

/// A successful InitProducerId: the fields of the response besides `error_code` 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdAndEpoch {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// Why InitProducerId failed. The response then carries [`NO_PRODUCER_ID`] and
/// [`NO_PRODUCER_EPOCH`] with [`InitProducerIdError::kafka_error_code`], as Kafka's
/// `initTransactionError` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InitProducerIdError {
    /// Exactly one of producer id and epoch is -1 (Kafka's `KafkaApis` check), or the
    /// transactional id is the empty string (Kafka's `TransactionCoordinator` check).
    InvalidRequest(&'static str),
    /// Transactional id given with a timeout outside `1..=transaction.max.timeout.ms`.
    InvalidTransactionTimeout { timeout_ms: i32 },
    /// Transactional id given: transactions are not implemented yet, and this is what a Kafka
    /// broker that does not host the id's transaction coordinator answers.
    TransactionsUnavailable,
    /// No producer id is available until the next block arrives (Kafka answers
    /// COORDINATOR_LOAD_IN_PROGRESS here because older clients treat a timeout as fatal).
    NoProducerIdBlock,
}

impl InitProducerIdError {
    /// The error code of the InitProducerId response.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            InitProducerIdError::InvalidRequest(_) => codes::INVALID_REQUEST,
            InitProducerIdError::InvalidTransactionTimeout { .. } => {
                codes::INVALID_TRANSACTION_TIMEOUT
            }
            InitProducerIdError::TransactionsUnavailable => codes::NOT_COORDINATOR,
            InitProducerIdError::NoProducerIdBlock => codes::COORDINATOR_LOAD_IN_PROGRESS,
        }
    }
}

impl fmt::Display for InitProducerIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitProducerIdError::InvalidRequest(why) => write!(f, "invalid InitProducerId: {why}"),
            InitProducerIdError::InvalidTransactionTimeout { timeout_ms } => {
                write!(f, "invalid transaction timeout {timeout_ms} ms")
            }
            InitProducerIdError::TransactionsUnavailable => {
                write!(f, "transactions are not available on this broker")
            }
            InitProducerIdError::NoProducerIdBlock => {
                write!(f, "no producer id block yet, waiting for the next one")
            }
        }
    }
}

impl std::error::Error for InitProducerIdError {}

/// Hands out producer ids and answers InitProducerId. One per broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerIdManager {
    /// The block ids are handed out from.
    current: IdRange,
    /// The block fetched ahead, used when `current` runs out.
    spare: Option<IdRange>,
    /// A block was asked for and has not arrived: don't ask twice.
    block_requested: bool,
    /// Kafka's `transaction.max.timeout.ms`, the upper bound of a transaction timeout.
    transaction_max_timeout_ms: i32,
}

impl ProducerIdManager {
    /// A manager with no block yet: the first InitProducerId answers
    /// COORDINATOR_LOAD_IN_PROGRESS unless a block is added first.
    ///
    /// After a restart, start with no block and ask for a fresh one: the ids of the block this
    /// broker held before may have been handed out, and nothing records which.
    pub fn new(transaction_max_timeout_ms: i32) -> ProducerIdManager {
        ProducerIdManager {
            current: IdRange::EMPTY,
            spare: None,
            block_requested: false,
            transaction_max_timeout_ms,
        }
    }

    /// The next unused producer id, or [`NeedBlock`] when the blocks are used up.
    pub fn next_id(&mut self) -> Result<i64, NeedBlock> {
        if self.current.is_exhausted() {
            self.current = self.spare.take().ok_or(NeedBlock)?;
        }
        let id = self.current.next;
        self.current.next += 1;
        Ok(id)
    }

    /// Whether the broker should ask the controller for a block now: none is on the way, no
    /// spare is held, and the current block is 90% used (or empty).
    pub fn wants_block(&self) -> bool {
        !self.block_requested
            && self.spare.is_none()
            && self.current.next >= self.current.prefetch_at
    }

    /// The broker sent the allocation: [`Self::wants_block`] is false until a block arrives
    /// or [`Self::block_request_failed`].
    pub fn block_request_sent(&mut self) {
        self.block_requested = true;
    }

    /// The allocation failed: [`Self::wants_block`] may ask again (the broker backs off).
    pub fn block_request_failed(&mut self) {
        self.block_requested = false;
    }

    /// Adds the block `first_producer_id .. first_producer_id + block_size` assigned to this
    /// broker. It becomes current if the current block is used up, else the spare.
    pub fn add_block(&mut self, first_producer_id: i64, block_size: i32) -> Result<(), BlockError> {
        let end = first_producer_id
            .checked_add(i64::from(block_size))
            .filter(|_| first_producer_id >= 0 && block_size > 0)
            .ok_or(BlockError::InvalidRange {
                first_producer_id,
                block_size,
            })?;
        let lowest_allowed = self
            .current
            .end
            .max(self.spare.map_or(0, |spare| spare.end));
        if first_producer_id < lowest_allowed {
            return Err(BlockError::NotMonotonic {
                first_producer_id,
                lowest_allowed,
            });
        }
        let block = IdRange::new(first_producer_id, end);
        if self.current.is_exhausted() {
            self.current = block;
        } else if self.spare.is_none() {
            self.spare = Some(block);
        } else {
            return Err(BlockError::SpareAlreadyHeld);
        }
        self.block_requested = false;
        Ok(())
    }

    /// Answers InitProducerId the way Kafka 4's `KafkaApis` and `TransactionCoordinator` do
    /// for a broker without transactions:
    ///
    /// - producer id and epoch must both be -1 or both be set, else INVALID_REQUEST;
    /// - no transactional id: a new producer id with epoch 0, whatever id and epoch the
    ///   request carries. This is also the KIP-360 case for an idempotent producer (Kafka
    ///   "blindly accepts" it and hands out a fresh id; the Java client bumps an idempotent
    ///   producer's epoch itself and only comes back here for a new id);
    /// - an empty transactional id: INVALID_REQUEST;
    /// - a timeout outside `1..=transaction.max.timeout.ms`: INVALID_TRANSACTION_TIMEOUT;
    /// - any other transactional id, including the KIP-360 bump of a transactional producer:
    ///   NOT_COORDINATOR, what a Kafka broker that does not own the id's transaction state
    ///   partition answers. Clients treat it as retriable and look the coordinator up again
    ///   (FindCoordinator for transactions should answer COORDINATOR_NOT_AVAILABLE, as Kafka
    ///   does when its transaction state topic cannot be created), so `initTransactions()`
    ///   times out instead of running without transactional guarantees.
    pub fn init_producer_id(
        &mut self,
        request: &InitProducerIdRequest<'_>,
    ) -> Result<ProducerIdAndEpoch, InitProducerIdError> {
        let id_given = request.producer_id != NO_PRODUCER_ID;
        let epoch_given = request.producer_epoch != NO_PRODUCER_EPOCH;
        if id_given != epoch_given {
            return Err(InitProducerIdError::InvalidRequest(
                "producer id and epoch must both be set or both be -1",
            ));
        }
        match request.transactional_id {
            None => self.new_idempotent_producer(),
            Some("") => Err(InitProducerIdError::InvalidRequest(
                "transactional id is empty",
            )),
            Some(_) => Err(self.transactional_init_error(request.transaction_timeout_ms)),
        }
    }

    fn new_idempotent_producer(&mut self) -> Result<ProducerIdAndEpoch, InitProducerIdError> {
        let producer_id = self
            .next_id()
            .map_err(|NeedBlock| InitProducerIdError::NoProducerIdBlock)?;
        Ok(ProducerIdAndEpoch {
            producer_id,
            producer_epoch: 0,
        })
    }

    fn transactional_init_error(&self, timeout_ms: i32) -> InitProducerIdError {
        if timeout_ms <= 0 || timeout_ms > self.transaction_max_timeout_ms {
            return InitProducerIdError::InvalidTransactionTimeout { timeout_ms };
        }
        InitProducerIdError::TransactionsUnavailable
    }
}

impl Default for ProducerIdManager {
    fn default() -> ProducerIdManager {
        ProducerIdManager::new(TRANSACTION_MAX_TIMEOUT_MS_DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idempotent() -> InitProducerIdRequest<'static> {
        InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
        }
    }

    fn grant(producer_id: i64) -> Result<ProducerIdAndEpoch, InitProducerIdError> {
        Ok(ProducerIdAndEpoch {
            producer_id,
            producer_epoch: 0,
        })
    }

    #[test]
    fn empty_manager_needs_a_block() {
        let mut manager = ProducerIdManager::default();
        assert!(manager.wants_block());
        assert_eq!(manager.next_id(), Err(NeedBlock));
        assert_eq!(
            manager.init_producer_id(&idempotent()),
            Err(InitProducerIdError::NoProducerIdBlock)
        );
        assert_eq!(
            InitProducerIdError::NoProducerIdBlock.kafka_error_code(),
            14
        );
    }

    #[test]
    fn ids_come_from_the_block_in_order_then_from_the_spare() {
        let mut manager = ProducerIdManager::default();
        manager.block_request_sent();
        assert!(!manager.wants_block());
        manager.add_block(1000, 10).unwrap();
        let first_nine: Vec<i64> = (0..9).map(|_| manager.next_id().unwrap()).collect();
        assert_eq!(first_nine, (1000..1009).collect::<Vec<_>>());
        // 9 of 10 handed out: the 90% mark was passed at the 9th id.
        assert!(manager.wants_block());
        manager.block_request_sent();
        assert!(!manager.wants_block());
        manager.add_block(3000, 10).unwrap();
        assert!(!manager.wants_block());
        assert_eq!(manager.next_id(), Ok(1009));
        assert_eq!(manager.next_id(), Ok(3000));
        assert_eq!(manager.next_id(), Ok(3001));
    }

    #[test]
    fn prefetch_is_wanted_at_ninety_percent_of_a_block() {
        let mut manager = ProducerIdManager::default();
        manager.add_block(0, 1000).unwrap();
        for _ in 0..899 {
            manager.next_id().unwrap();
        }
        assert!(!manager.wants_block());
        manager.next_id().unwrap();
        assert!(manager.wants_block());
    }

    #[test]
    fn exhausted_blocks_answer_load_in_progress_until_the_next_arrives() {
        let mut manager = ProducerIdManager::default();
        manager.add_block(5, 1).unwrap();
        assert_eq!(manager.init_producer_id(&idempotent()), grant(5));
        assert_eq!(
            manager.init_producer_id(&idempotent()),
            Err(InitProducerIdError::NoProducerIdBlock)
        );
        manager.add_block(6, 1).unwrap();
        assert_eq!(manager.init_producer_id(&idempotent()), grant(6));
    }

    #[test]
    fn failed_request_can_be_retried() {
        let mut manager = ProducerIdManager::default();
        manager.block_request_sent();
        assert!(!manager.wants_block());
        manager.block_request_failed();
        assert!(manager.wants_block());
    }

    #[test]
    fn bad_blocks_are_refused() {
        let mut manager = ProducerIdManager::default();
        let invalid = |first_producer_id, block_size| BlockError::InvalidRange {
            first_producer_id,
            block_size,
        };
        assert_eq!(manager.add_block(-1, 10), Err(invalid(-1, 10)));
        assert_eq!(manager.add_block(0, 0), Err(invalid(0, 0)));
        assert_eq!(
            manager.add_block(i64::MAX - 1, 2),
            Err(invalid(i64::MAX - 1, 2))
        );
        manager.add_block(100, 10).unwrap();
        assert_eq!(
            manager.add_block(105, 10),
            Err(BlockError::NotMonotonic {
                first_producer_id: 105,
                lowest_allowed: 110
            })
        );
        manager.add_block(110, 10).unwrap();
        assert_eq!(
            manager.add_block(200, 10),
            Err(BlockError::SpareAlreadyHeld)
        );
        assert_eq!(manager.next_id(), Ok(100));
    }

    #[test]
    fn kip_360_bump_of_an_idempotent_producer_gets_a_new_id_at_epoch_0() {
        let mut manager = ProducerIdManager::default();
        manager.add_block(0, 100).unwrap();
        assert_eq!(manager.init_producer_id(&idempotent()), grant(0));
        let bump = InitProducerIdRequest {
            producer_id: 0,
            producer_epoch: 7,
            ..idempotent()
        };
        assert_eq!(manager.init_producer_id(&bump), grant(1));
    }

    #[test]
    fn java_idempotent_request_ignores_its_timeout() {
        // The Java client's idempotent InitProducerId carries Integer.MAX_VALUE as timeout;
        // Kafka validates the timeout only for transactional ids.
        let mut manager = ProducerIdManager::default();
        manager.add_block(0, 100).unwrap();
        let java = InitProducerIdRequest {
            transaction_timeout_ms: i32::MAX,
            ..idempotent()
        };
        assert_eq!(manager.init_producer_id(&java), grant(0));
    }

    #[test]
    fn half_given_producer_id_and_epoch_is_invalid_request() {
        let mut manager = ProducerIdManager::default();
        manager.add_block(0, 100).unwrap();
        for (producer_id, producer_epoch) in [(5, NO_PRODUCER_EPOCH), (NO_PRODUCER_ID, 3)] {
            let request = InitProducerIdRequest {
                producer_id,
                producer_epoch,
                ..idempotent()
            };
            let error = manager.init_producer_id(&request).unwrap_err();
            assert_eq!(error.kafka_error_code(), 42);
        }
        // No id was consumed by the refused requests.
        assert_eq!(manager.next_id(), Ok(0));
    }

    #[test]
    fn transactional_ids_are_answered_without_a_coordinator() {
        let mut manager = ProducerIdManager::new(900_000);
        manager.add_block(0, 100).unwrap();
        let with_id = |id, timeout_ms| InitProducerIdRequest {
            transactional_id: Some(id),
            transaction_timeout_ms: timeout_ms,
            ..idempotent()
        };
        let code = |manager: &mut ProducerIdManager, request| {
            manager
                .init_producer_id(&request)
                .unwrap_err()
                .kafka_error_code()
        };
        assert_eq!(code(&mut manager, with_id("", 60_000)), 42);
        assert_eq!(code(&mut manager, with_id("tx", 0)), 50);
        assert_eq!(code(&mut manager, with_id("tx", 900_001)), 50);
        assert_eq!(code(&mut manager, with_id("tx", 900_000)), 16);
        let bump = InitProducerIdRequest {
            producer_id: 0,
            producer_epoch: 0,
            ..with_id("tx", 60_000)
        };
        assert_eq!(code(&mut manager, bump), 16);
        assert_eq!(manager.next_id(), Ok(0));
    }
}
