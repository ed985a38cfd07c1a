//! The `__consumer_offsets` records, in Kafka's own key/value schemas so that tools reading
//! that topic keep working. Each key and value is a big-endian `i16` schema version followed
//! by the struct encoded at that version (see `docs/design/group.md`).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use freshet_protocol::internal_records::group_metadata_value::MemberMetadata;
use freshet_protocol::internal_records::{
    ConsumerGroupCurrentMemberAssignmentKey, ConsumerGroupMemberMetadataKey,
    ConsumerGroupMetadataKey, ConsumerGroupPartitionMetadataKey,
    ConsumerGroupTargetAssignmentMemberKey, ConsumerGroupTargetAssignmentMetadataKey,
    GroupMetadataKey, GroupMetadataValue, OffsetCommitKey, OffsetCommitValue,
};
use freshet_protocol::{Decode, Encode};

/// Key versions 0 and 1 are offset commits (Kafka writes 1).
pub const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// Key version 2 is group metadata.
pub const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// Offset commit value written when the commit carries no expire timestamp (Kafka 3+/4).
pub const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
/// Offset commit value written when an OffsetCommit v2-v4 gave a retention time: only v1
/// has the `expire_timestamp` field.
pub const OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY: i16 = 1;
/// Group metadata value version Kafka 4 writes (has `group_instance_id`, not flexible).
pub const GROUP_METADATA_VALUE_VERSION: i16 = 3;
/// KIP-848 record key versions (each kind of consumer-group record has its own).
pub const CONSUMER_GROUP_METADATA_KEY_VERSION: i16 = 3;
pub const CONSUMER_GROUP_PARTITION_METADATA_KEY_VERSION: i16 = 4;
pub const CONSUMER_GROUP_MEMBER_METADATA_KEY_VERSION: i16 = 5;
pub const CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_KEY_VERSION: i16 = 6;
pub const CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_KEY_VERSION: i16 = 7;
pub const CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_KEY_VERSION: i16 = 8;
/// Every KIP-848 record value is written at version 0 (flexible).
pub const CONSUMER_GROUP_VALUE_VERSION: i16 = 0;

/// One key/value pair to append to the group's `__consumer_offsets` partition.
/// `value: None` is a tombstone (the key's previous value is deleted on replay/compaction).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// A record key or value read back from the log, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum DecodedKey {
    Offset(OffsetCommitKey),
    Group(GroupMetadataKey),
    /// KIP-848 consumer-group records, key versions 3 to 8.
    ConsumerGroupMetadata(ConsumerGroupMetadataKey),
    ConsumerGroupPartitionMetadata(ConsumerGroupPartitionMetadataKey),
    ConsumerGroupMemberMetadata(ConsumerGroupMemberMetadataKey),
    ConsumerGroupTargetAssignmentMetadata(ConsumerGroupTargetAssignmentMetadataKey),
    ConsumerGroupTargetAssignmentMember(ConsumerGroupTargetAssignmentMemberKey),
    ConsumerGroupCurrentMemberAssignment(ConsumerGroupCurrentMemberAssignmentKey),
    /// Share-group and later records (key versions 9+), kept by Kafka in the same topic;
    /// this coordinator does not read them.
    Other(i16),
}

/// Why a record read from `__consumer_offsets` could not be used. Replay reports it and
/// skips the record: disk contents never panic the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    Truncated,
    UnsupportedVersion(i16),
    Decode(String),
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated => write!(f, "record shorter than its version prefix"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported record version {v}"),
            Self::Decode(e) => write!(f, "record does not decode: {e}"),
        }
    }
}

impl std::error::Error for RecordError {}

fn encode_versioned<T: Encode>(message: &T, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    // Encoding our own structs at a version we chose cannot fail: every field we fill exists
    // at that version, so a failure is a bug in this crate.
    message
        .encode(&mut buf, version)
        .expect("internal record encodes at its chosen version");
    buf.freeze()
}

fn split_version(bytes: &Bytes) -> Result<(i16, Bytes), RecordError> {
    if bytes.len() < 2 {
        return Err(RecordError::Truncated);
    }
    let mut body = bytes.clone();
    let version = body.get_i16();
    Ok((version, body))
}

fn decode_as<T: Decode>(mut body: Bytes, version: i16) -> Result<T, RecordError> {
    T::decode(&mut body, version).map_err(|e| RecordError::Decode(e.to_string()))
}

pub fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let key = OffsetCommitKey {
        group: group.to_string(),
        topic: topic.to_string(),
        partition,
    };
    encode_versioned(&key, OFFSET_COMMIT_KEY_VERSION)
}

pub fn group_key(group: &str) -> Bytes {
    let key = GroupMetadataKey {
        group: group.to_string(),
    };
    encode_versioned(&key, GROUP_METADATA_KEY_VERSION)
}

pub fn offset_value(value: &OffsetCommitValue) -> Bytes {
    let version = if value.expire_timestamp >= 0 {
        OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY
    } else {
        OFFSET_COMMIT_VALUE_VERSION
    };
    encode_versioned(value, version)
}

pub fn group_value(value: &GroupMetadataValue) -> Bytes {
    encode_versioned(value, GROUP_METADATA_VALUE_VERSION)
}

pub fn decode_key(bytes: &Bytes) -> Result<DecodedKey, RecordError> {
    let (version, body) = split_version(bytes)?;
    match version {
        0 | 1 => decode_as(body, version).map(DecodedKey::Offset),
        2 => decode_as(body, version).map(DecodedKey::Group),
        3 => decode_as(body, version).map(DecodedKey::ConsumerGroupMetadata),
        4 => decode_as(body, version).map(DecodedKey::ConsumerGroupPartitionMetadata),
        5 => decode_as(body, version).map(DecodedKey::ConsumerGroupMemberMetadata),
        6 => decode_as(body, version).map(DecodedKey::ConsumerGroupTargetAssignmentMetadata),
        7 => decode_as(body, version).map(DecodedKey::ConsumerGroupTargetAssignmentMember),
        8 => decode_as(body, version).map(DecodedKey::ConsumerGroupCurrentMemberAssignment),
        v if v > 8 => Ok(DecodedKey::Other(v)),
        v => Err(RecordError::UnsupportedVersion(v)),
    }
}

pub fn decode_offset_value(bytes: &Bytes) -> Result<OffsetCommitValue, RecordError> {
    let (version, body) = split_version(bytes)?;
    if !(0..=4).contains(&version) {
        return Err(RecordError::UnsupportedVersion(version));
    }
    decode_as(body, version)
}

pub fn decode_group_value(bytes: &Bytes) -> Result<GroupMetadataValue, RecordError> {
    let (version, body) = split_version(bytes)?;
    if !(0..=4).contains(&version) {
        return Err(RecordError::UnsupportedVersion(version));
    }
    decode_as(body, version)
}

pub fn consumer_group_metadata_key(group: &str) -> Bytes {
    let key = ConsumerGroupMetadataKey {
        group_id: group.to_string(),
    };
    encode_versioned(&key, CONSUMER_GROUP_METADATA_KEY_VERSION)
}

pub fn consumer_group_partition_metadata_key(group: &str) -> Bytes {
    let key = ConsumerGroupPartitionMetadataKey {
        group_id: group.to_string(),
    };
    encode_versioned(&key, CONSUMER_GROUP_PARTITION_METADATA_KEY_VERSION)
}

pub fn consumer_group_member_metadata_key(group: &str, member: &str) -> Bytes {
    let key = ConsumerGroupMemberMetadataKey {
        group_id: group.to_string(),
        member_id: member.to_string(),
    };
    encode_versioned(&key, CONSUMER_GROUP_MEMBER_METADATA_KEY_VERSION)
}

pub fn consumer_group_target_assignment_metadata_key(group: &str) -> Bytes {
    let key = ConsumerGroupTargetAssignmentMetadataKey {
        group_id: group.to_string(),
    };
    encode_versioned(&key, CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_KEY_VERSION)
}

pub fn consumer_group_target_assignment_member_key(group: &str, member: &str) -> Bytes {
    let key = ConsumerGroupTargetAssignmentMemberKey {
        group_id: group.to_string(),
        member_id: member.to_string(),
    };
    encode_versioned(&key, CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_KEY_VERSION)
}

pub fn consumer_group_current_member_assignment_key(group: &str, member: &str) -> Bytes {
    let key = ConsumerGroupCurrentMemberAssignmentKey {
        group_id: group.to_string(),
        member_id: member.to_string(),
    };
    encode_versioned(&key, CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_KEY_VERSION)
}

/// Encodes any KIP-848 record value (all are version 0).
pub fn consumer_group_value<T: Encode>(value: &T) -> Bytes {
    encode_versioned(value, CONSUMER_GROUP_VALUE_VERSION)
}

/// Decodes a KIP-848 record value; only version 0 exists.
pub fn decode_consumer_group_value<T: Decode>(bytes: &Bytes) -> Result<T, RecordError> {
    let (version, body) = split_version(bytes)?;
    if version != CONSUMER_GROUP_VALUE_VERSION {
        return Err(RecordError::UnsupportedVersion(version));
    }
    decode_as(body, version)
}

/// Builds one member's entry of the group metadata value.
pub(crate) fn member_metadata(
    member: &crate::classic::Member,
    protocol: Option<&str>,
) -> MemberMetadata {
    MemberMetadata {
        member_id: member.member_id.clone(),
        group_instance_id: member.group_instance_id.clone(),
        client_id: member.client_id.clone(),
        client_host: member.client_host.clone(),
        rebalance_timeout: member.rebalance_timeout_ms,
        session_timeout: member.session_timeout_ms,
        subscription: protocol
            .and_then(|p| member.metadata_for(p))
            .unwrap_or_default(),
        assignment: member.assignment.clone(),
        unknown_tagged_fields: Vec::new(),
    }
}
