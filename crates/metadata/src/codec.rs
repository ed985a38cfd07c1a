//! Binary encoding of metadata records, documented byte by byte in docs/design/metadata.md.
//!
//! Every integer is big-endian with an explicit width. A record is
//! `version: u8, type: u8, body`; a batch (one Raft entry) is
//! `count: u32, then count x (length: u32, record)`. Decoding never panics and never allocates
//! more than the input's length: every count is checked against the bytes that remain.

use crate::record::{
    BrokerRegistration, ConfigRecord, ConfigResourceType, MetadataRecord, PartitionChange,
    PartitionRecord, ProducerIdsBlock, TopicId,
};

/// The only record version written so far. A reader refuses versions it does not know rather
/// than guessing, so an old binary cannot misread a newer log.
pub const RECORD_VERSION: u8 = 0;

/// Type bytes of each record kind; never reuse a retired number.
mod record_type {
    pub const CLUSTER_ID: u8 = 1;
    pub const REGISTER_BROKER: u8 = 2;
    pub const UNREGISTER_BROKER: u8 = 3;
    pub const TOPIC: u8 = 4;
    pub const PARTITION: u8 = 5;
    pub const PARTITION_CHANGE: u8 = 6;
    pub const REMOVE_TOPIC: u8 = 7;
    pub const CONFIG: u8 = 8;
    pub const PRODUCER_IDS: u8 = 9;
}

/// Why bytes could not be decoded into records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("input ends in the middle of a record")]
    Truncated,
    #[error("unknown record version {0}")]
    UnknownVersion(u8),
    #[error("unknown record type {0}")]
    UnknownType(u8),
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("{0} bytes left after the end of a record")]
    TrailingBytes(usize),
    #[error("invalid field: {0}")]
    InvalidField(&'static str),
}

/// Why a record could not be encoded (a field too long for its length prefix).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("string of {0} bytes does not fit a u16 length")]
    StringTooLong(usize),
    #[error("list of {0} items does not fit a u32 count")]
    ListTooLong(usize),
}

/// Encodes one record (version byte, type byte, body).
pub fn encode_record(record: &MetadataRecord) -> Result<Vec<u8>, EncodeError> {
    let mut w = Writer::default();
    w.u8(RECORD_VERSION);
    encode_body(&mut w, record)?;
    Ok(w.buf)
}

/// Decodes exactly one record; trailing bytes are an error.
pub fn decode_record(bytes: &[u8]) -> Result<MetadataRecord, DecodeError> {
    let mut r = Reader::new(bytes);
    let record = read_record(&mut r)?;
    r.finish()?;
    Ok(record)
}

/// Encodes a batch of records, the payload of one Raft log entry.
pub fn encode_batch(records: &[MetadataRecord]) -> Result<Vec<u8>, EncodeError> {
    let mut w = Writer::default();
    w.u32(len_u32(records.len())?);
    for record in records {
        let bytes = encode_record(record)?;
        w.u32(len_u32(bytes.len())?);
        w.buf.extend_from_slice(&bytes);
    }
    Ok(w.buf)
}

/// Decodes a batch written by [`encode_batch`].
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<MetadataRecord>, DecodeError> {
    let mut r = Reader::new(bytes);
    // Each record takes at least 4 (length) + 2 (version, type) bytes.
    let count = r.count(6)?;
    let mut records = Vec::with_capacity(count);
    for _ in 0..count {
        let len = r.u32()? as usize;
        records.push(decode_record(r.take(len)?)?);
    }
    r.finish()?;
    Ok(records)
}

fn len_u32(len: usize) -> Result<u32, EncodeError> {
    u32::try_from(len).map_err(|_| EncodeError::ListTooLong(len))
}

fn encode_body(w: &mut Writer, record: &MetadataRecord) -> Result<(), EncodeError> {
    match record {
        MetadataRecord::ClusterId(id) => {
            w.u8(record_type::CLUSTER_ID);
            w.string(id)?;
        }
        MetadataRecord::RegisterBroker(b) => encode_register_broker(w, b)?,
        MetadataRecord::UnregisterBroker {
            node_id,
            broker_epoch,
        } => {
            w.u8(record_type::UNREGISTER_BROKER);
            w.i32(*node_id);
            w.i64(*broker_epoch);
        }
        MetadataRecord::Topic { name, topic_id } => {
            w.u8(record_type::TOPIC);
            w.string(name)?;
            w.topic_id(topic_id);
        }
        MetadataRecord::Partition(p) => encode_partition(w, p)?,
        MetadataRecord::PartitionChange(c) => encode_partition_change(w, c)?,
        MetadataRecord::RemoveTopic { topic_id } => {
            w.u8(record_type::REMOVE_TOPIC);
            w.topic_id(topic_id);
        }
        MetadataRecord::Config(c) => encode_config(w, c)?,
        MetadataRecord::ProducerIds(b) => {
            w.u8(record_type::PRODUCER_IDS);
            w.i32(b.assigned_to_node);
            w.i64(b.first_producer_id);
            w.i32(b.block_size);
        }
    }
    Ok(())
}

fn encode_register_broker(w: &mut Writer, b: &BrokerRegistration) -> Result<(), EncodeError> {
    w.u8(record_type::REGISTER_BROKER);
    w.i32(b.node_id);
    w.i64(b.broker_epoch);
    w.string(&b.host)?;
    w.u16(b.port);
    w.nullable_string(b.rack.as_deref())
}

fn encode_partition(w: &mut Writer, p: &PartitionRecord) -> Result<(), EncodeError> {
    w.u8(record_type::PARTITION);
    w.topic_id(&p.topic_id);
    w.i32(p.partition);
    w.i32_list(&p.replicas)?;
    w.i32_list(&p.isr)?;
    w.i32(p.leader);
    w.i32(p.leader_epoch);
    w.i32(p.partition_epoch);
    Ok(())
}

fn encode_partition_change(w: &mut Writer, c: &PartitionChange) -> Result<(), EncodeError> {
    w.u8(record_type::PARTITION_CHANGE);
    w.topic_id(&c.topic_id);
    w.i32(c.partition);
    match c.leader {
        Some(leader) => {
            w.u8(1);
            w.i32(leader);
        }
        None => w.u8(0),
    }
    w.optional_i32_list(c.isr.as_deref())?;
    w.optional_i32_list(c.replicas.as_deref())
}

fn encode_config(w: &mut Writer, c: &ConfigRecord) -> Result<(), EncodeError> {
    w.u8(record_type::CONFIG);
    w.u8(c.resource_type.code());
    w.string(&c.resource_name)?;
    w.string(&c.key)?;
    w.nullable_string(c.value.as_deref())
}

fn read_record(r: &mut Reader<'_>) -> Result<MetadataRecord, DecodeError> {
    let version = r.u8()?;
    if version != RECORD_VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    let kind = r.u8()?;
    match kind {
        record_type::CLUSTER_ID => Ok(MetadataRecord::ClusterId(r.string()?)),
        record_type::REGISTER_BROKER => read_register_broker(r),
        record_type::UNREGISTER_BROKER => Ok(MetadataRecord::UnregisterBroker {
            node_id: r.i32()?,
            broker_epoch: r.i64()?,
        }),
        record_type::TOPIC => Ok(MetadataRecord::Topic {
            name: r.string()?,
            topic_id: r.topic_id()?,
        }),
        record_type::PARTITION => read_partition(r),
        record_type::PARTITION_CHANGE => read_partition_change(r),
        record_type::REMOVE_TOPIC => Ok(MetadataRecord::RemoveTopic {
            topic_id: r.topic_id()?,
        }),
        record_type::CONFIG => read_config(r),
        record_type::PRODUCER_IDS => Ok(MetadataRecord::ProducerIds(ProducerIdsBlock {
            assigned_to_node: r.i32()?,
            first_producer_id: r.i64()?,
            block_size: r.i32()?,
        })),
        other => Err(DecodeError::UnknownType(other)),
    }
}

fn read_register_broker(r: &mut Reader<'_>) -> Result<MetadataRecord, DecodeError> {
    Ok(MetadataRecord::RegisterBroker(BrokerRegistration {
        node_id: r.i32()?,
        broker_epoch: r.i64()?,
        host: r.string()?,
        port: r.u16()?,
        rack: r.nullable_string()?,
    }))
}

fn read_partition(r: &mut Reader<'_>) -> Result<MetadataRecord, DecodeError> {
    Ok(MetadataRecord::Partition(PartitionRecord {
        topic_id: r.topic_id()?,
        partition: r.i32()?,
        replicas: r.i32_list()?,
        isr: r.i32_list()?,
        leader: r.i32()?,
        leader_epoch: r.i32()?,
        partition_epoch: r.i32()?,
    }))
}

fn read_partition_change(r: &mut Reader<'_>) -> Result<MetadataRecord, DecodeError> {
    let topic_id = r.topic_id()?;
    let partition = r.i32()?;
    let leader = if r.presence()? { Some(r.i32()?) } else { None };
    let isr = r.optional_i32_list()?;
    let replicas = r.optional_i32_list()?;
    Ok(MetadataRecord::PartitionChange(PartitionChange {
        topic_id,
        partition,
        leader,
        isr,
        replicas,
    }))
}

fn read_config(r: &mut Reader<'_>) -> Result<MetadataRecord, DecodeError> {
    let code = r.u8()?;
    let resource_type = ConfigResourceType::from_code(code)
        .ok_or(DecodeError::InvalidField("config resource type"))?;
    Ok(MetadataRecord::Config(ConfigRecord {
        resource_type,
        resource_name: r.string()?,
        key: r.string()?,
        value: r.nullable_string()?,
    }))
}

/// Appends big-endian fields to a buffer.
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn topic_id(&mut self, id: &TopicId) {
        self.buf.extend_from_slice(&id.0);
    }
    fn string(&mut self, s: &str) -> Result<(), EncodeError> {
        let len = u16::try_from(s.len()).map_err(|_| EncodeError::StringTooLong(s.len()))?;
        self.u16(len);
        self.buf.extend_from_slice(s.as_bytes());
        Ok(())
    }
    /// A presence byte (0 or 1) then, when present, the string.
    fn nullable_string(&mut self, s: Option<&str>) -> Result<(), EncodeError> {
        match s {
            Some(s) => {
                self.u8(1);
                self.string(s)
            }
            None => {
                self.u8(0);
                Ok(())
            }
        }
    }
    fn i32_list(&mut self, list: &[i32]) -> Result<(), EncodeError> {
        self.u32(len_u32(list.len())?);
        for v in list {
            self.i32(*v);
        }
        Ok(())
    }
    fn optional_i32_list(&mut self, list: Option<&[i32]>) -> Result<(), EncodeError> {
        match list {
            Some(list) => {
                self.u8(1);
                self.i32_list(list)
            }
            None => {
                self.u8(0);
                Ok(())
            }
        }
    }
}

/// Reads big-endian fields, failing (never panicking) when the input is short.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    fn topic_id(&mut self) -> Result<TopicId, DecodeError> {
        Ok(TopicId(self.array()?))
    }
    fn presence(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidField("presence byte")),
        }
    }
    /// A u32 count of items of at least `item_bytes_min` bytes each, refused when the input
    /// cannot hold that many (so a hostile count cannot make us allocate).
    fn count(&mut self, item_bytes_min: usize) -> Result<usize, DecodeError> {
        let count = self.u32()? as usize;
        if count.saturating_mul(item_bytes_min) > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(count)
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        let len = usize::from(self.u16()?);
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidUtf8)
    }
    fn nullable_string(&mut self) -> Result<Option<String>, DecodeError> {
        if self.presence()? {
            Ok(Some(self.string()?))
        } else {
            Ok(None)
        }
    }
    fn i32_list(&mut self) -> Result<Vec<i32>, DecodeError> {
        let count = self.count(4)?;
        (0..count).map(|_| self.i32()).collect()
    }
    fn optional_i32_list(&mut self) -> Result<Option<Vec<i32>>, DecodeError> {
        if self.presence()? {
            Ok(Some(self.i32_list()?))
        } else {
            Ok(None)
        }
    }
    fn finish(&self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.rest.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic_id(b: u8) -> TopicId {
        TopicId([b; 16])
    }

    fn all_kinds() -> Vec<MetadataRecord> {
        vec![
            MetadataRecord::ClusterId("abc".into()),
            MetadataRecord::RegisterBroker(BrokerRegistration {
                node_id: 1,
                broker_epoch: 7,
                host: "h".into(),
                port: 9092,
                rack: Some("r1".into()),
            }),
            MetadataRecord::UnregisterBroker {
                node_id: 1,
                broker_epoch: 7,
            },
            MetadataRecord::Topic {
                name: "t".into(),
                topic_id: topic_id(0xab),
            },
            MetadataRecord::Partition(PartitionRecord {
                topic_id: topic_id(1),
                partition: 2,
                replicas: vec![1, 2],
                isr: vec![1],
                leader: 1,
                leader_epoch: 3,
                partition_epoch: 4,
            }),
            MetadataRecord::PartitionChange(PartitionChange {
                topic_id: topic_id(1),
                partition: 0,
                leader: Some(2),
                isr: None,
                replicas: Some(vec![2, 3]),
            }),
            MetadataRecord::RemoveTopic {
                topic_id: topic_id(9),
            },
            MetadataRecord::Config(ConfigRecord {
                resource_type: ConfigResourceType::Topic,
                resource_name: "t".into(),
                key: "retention.ms".into(),
                value: None,
            }),
            MetadataRecord::ProducerIds(ProducerIdsBlock {
                assigned_to_node: 1,
                first_producer_id: 1000,
                block_size: 1000,
            }),
        ]
    }

    #[test]
    fn every_kind_round_trips() {
        for record in all_kinds() {
            let bytes = encode_record(&record).unwrap();
            assert_eq!(decode_record(&bytes).unwrap(), record, "{record:?}");
        }
        let batch = encode_batch(&all_kinds()).unwrap();
        assert_eq!(decode_batch(&batch).unwrap(), all_kinds());
    }

    #[test]
    fn topic_record_bytes_are_exact() {
        let record = MetadataRecord::Topic {
            name: "ab".into(),
            topic_id: topic_id(0x11),
        };
        let mut expected = vec![0, 4, 0, 2, b'a', b'b'];
        expected.extend_from_slice(&[0x11; 16]);
        assert_eq!(encode_record(&record).unwrap(), expected);
    }

    #[test]
    fn config_record_bytes_are_exact() {
        let record = MetadataRecord::Config(ConfigRecord {
            resource_type: ConfigResourceType::Topic,
            resource_name: "t".into(),
            key: "k".into(),
            value: Some("v".into()),
        });
        let expected = vec![0, 8, 2, 0, 1, b't', 0, 1, b'k', 1, 0, 1, b'v'];
        assert_eq!(encode_record(&record).unwrap(), expected);
    }

    #[test]
    fn producer_ids_bytes_are_exact() {
        let record = MetadataRecord::ProducerIds(ProducerIdsBlock {
            assigned_to_node: 1,
            first_producer_id: 0x0102,
            block_size: 1000,
        });
        let expected = vec![0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0x03, 0xe8];
        assert_eq!(encode_record(&record).unwrap(), expected);
    }

    #[test]
    fn batch_bytes_are_exact() {
        let batch = encode_batch(&[MetadataRecord::ClusterId("x".into())]).unwrap();
        assert_eq!(batch, vec![0, 0, 0, 1, 0, 0, 0, 5, 0, 1, 0, 1, b'x']);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for record in all_kinds() {
            let bytes = encode_record(&record).unwrap();
            for cut in 0..bytes.len() {
                assert_eq!(decode_record(&bytes[..cut]), Err(DecodeError::Truncated));
            }
        }
    }

    #[test]
    fn hostile_inputs_are_refused() {
        assert_eq!(decode_record(&[1, 4]), Err(DecodeError::UnknownVersion(1)));
        assert_eq!(decode_record(&[0, 200]), Err(DecodeError::UnknownType(200)));
        assert_eq!(
            decode_record(&[0, 1, 0, 1, 0xff]),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(
            decode_record(&[0, 1, 0, 0, 7]),
            Err(DecodeError::TrailingBytes(1))
        );
        // A list count of 2^32-1 with nothing behind it must not allocate.
        let mut partition = vec![0, 5];
        partition.extend_from_slice(&[0; 16]);
        partition.extend_from_slice(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(decode_record(&partition), Err(DecodeError::Truncated));
        assert_eq!(
            decode_batch(&[0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::Truncated)
        );
        // Config resource type 3 (Kafka's GROUP) is not stored in this log.
        assert_eq!(
            decode_record(&[0, 8, 3, 0, 0, 0, 0, 0]),
            Err(DecodeError::InvalidField("config resource type"))
        );
        assert_eq!(
            decode_record(&[0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 2]),
            Err(DecodeError::InvalidField("presence byte"))
        );
    }

    #[test]
    fn pseudo_random_bytes_never_panic() {
        // A small xorshift fuzz loop; cargo fuzz can go further later.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 48) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| (state >> (i % 8 * 8)) as u8 % 12)
                .collect();
            let _ = decode_record(&bytes);
            let _ = decode_batch(&bytes);
        }
    }
}
