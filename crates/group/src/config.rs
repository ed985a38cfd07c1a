/// The coordinator's settings, named after Kafka's broker configs.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group
    /// waits for more members, extended by each new member up to the rebalance timeout.
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`.
    pub session_timeout_min_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub session_timeout_max_ms: i32,
    /// `offsets.retention.minutes` in ms: how long an empty group's offsets live.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: i64,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_bytes_max: usize,
    /// Mixed into generated member ids so that ids stay unique across coordinator restarts
    /// (Kafka uses a random UUID; the broker passes a random seed, tests a fixed one).
    pub member_id_seed: u64,
    /// `group.consumer.session.timeout.ms`: a KIP-848 member that sends no
    /// ConsumerGroupHeartbeat for this long is removed.
    pub consumer_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`: told to KIP-848 members in every heartbeat
    /// response.
    pub consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.max.size`: members a KIP-848 group may have (GROUP_MAX_SIZE_REACHED).
    pub consumer_max_size: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            initial_rebalance_delay_ms: 3_000,
            session_timeout_min_ms: 6_000,
            session_timeout_max_ms: 1_800_000,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1_000,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_bytes_max: 4_096,
            member_id_seed: 0,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
            consumer_max_size: i32::MAX as usize,
        }
    }
}
