//! Byte formats of the Raft store (docs/design/metadata.md has the tables) and the file
//! helpers every file of the store uses.
//!
//! Everything is big-endian with explicit widths. Decoding never panics: a short or
//! inconsistent input is an `InvalidData` I/O error.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use freshet_metadata::codec::{decode_batch, encode_batch};
use openraft::impls::leader_id_adv::LeaderId;
use openraft::{BasicNode, EntryPayload};

use crate::types::{Entry, LogId, Membership, MetadataBatch, StoredMembership, Vote};

/// Version byte at the start of every state and snapshot file.
pub const FILE_VERSION: u8 = 0;

/// No entry, vote file or snapshot may claim more bytes than this: a corrupt length must not
/// make recovery allocate gigabytes. Metadata entries are small; a topic with the maximum
/// 100k partitions encodes to about 5 MiB.
pub const RECORD_BYTES_MAX: u32 = 64 * 1024 * 1024;

mod payload_type {
    pub const BLANK: u8 = 0;
    pub const NORMAL: u8 = 1;
    pub const MEMBERSHIP: u8 = 2;
}

pub fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Appends big-endian fields.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn bytes(&mut self, v: &[u8]) -> io::Result<()> {
        let len = u32::try_from(v.len()).map_err(|_| invalid("field too long"))?;
        self.u32(len);
        self.buf.extend_from_slice(v);
        Ok(())
    }
    pub fn log_id(&mut self, id: &LogId) {
        self.u64(id.leader_id.term);
        self.u64(id.leader_id.node_id);
        self.u64(id.index);
    }
    pub fn option_log_id(&mut self, id: Option<&LogId>) {
        match id {
            Some(id) => {
                self.u8(1);
                self.log_id(id);
            }
            None => self.u8(0),
        }
    }
    pub fn vote(&mut self, vote: &Vote) {
        self.u64(vote.leader_id.term);
        self.u64(vote.leader_id.node_id);
        self.u8(u8::from(vote.committed));
    }
    pub fn membership(&mut self, m: &Membership) -> io::Result<()> {
        let configs = m.get_joint_config();
        self.u32(count_u32(configs.len())?);
        for config in configs {
            self.u32(count_u32(config.len())?);
            for id in config {
                self.u64(*id);
            }
        }
        let nodes: Vec<(&u64, &BasicNode)> = m.nodes().collect();
        self.u32(count_u32(nodes.len())?);
        for (id, node) in nodes {
            self.u64(*id);
            self.bytes(node.addr.as_bytes())?;
        }
        Ok(())
    }
    pub fn stored_membership(&mut self, m: &StoredMembership) -> io::Result<()> {
        self.option_log_id(m.log_id().as_ref());
        self.membership(m.membership())
    }
}

fn count_u32(n: usize) -> io::Result<u32> {
    u32::try_from(n).map_err(|_| invalid("too many items"))
}

/// Reads big-endian fields, failing with `InvalidData` when the input is short.
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }
    pub fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(invalid("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub fn u8(&mut self) -> io::Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    pub fn bytes(&mut self) -> io::Result<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
    fn flag(&mut self) -> io::Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(invalid("flag byte is neither 0 nor 1")),
        }
    }
    /// A count of items of at least `item_bytes_min` bytes each that the input can hold.
    fn count(&mut self, item_bytes_min: usize) -> io::Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(item_bytes_min) > self.rest.len() {
            return Err(invalid("count larger than the input"));
        }
        Ok(n)
    }
    pub fn log_id(&mut self) -> io::Result<LogId> {
        let term = self.u64()?;
        let node_id = self.u64()?;
        let index = self.u64()?;
        Ok(LogId::new(LeaderId { term, node_id }, index))
    }
    pub fn option_log_id(&mut self) -> io::Result<Option<LogId>> {
        if self.flag()? {
            Ok(Some(self.log_id()?))
        } else {
            Ok(None)
        }
    }
    pub fn vote(&mut self) -> io::Result<Vote> {
        let term = self.u64()?;
        let node_id = self.u64()?;
        let committed = self.flag()?;
        Ok(Vote {
            leader_id: LeaderId { term, node_id },
            committed,
        })
    }
    pub fn membership(&mut self) -> io::Result<Membership> {
        let config_count = self.count(4)?;
        let mut configs = Vec::with_capacity(config_count);
        for _ in 0..config_count {
            let n = self.count(8)?;
            let ids = (0..n)
                .map(|_| self.u64())
                .collect::<io::Result<BTreeSet<u64>>>()?;
            configs.push(ids);
        }
        let node_count = self.count(12)?;
        let mut nodes = BTreeMap::new();
        for _ in 0..node_count {
            let id = self.u64()?;
            let addr = std::str::from_utf8(self.bytes()?).map_err(|_| invalid("node address"))?;
            nodes.insert(id, BasicNode::new(addr));
        }
        Membership::new(configs, nodes).map_err(|e| invalid(&format!("membership: {e}")))
    }
    pub fn stored_membership(&mut self) -> io::Result<StoredMembership> {
        let log_id = self.option_log_id()?;
        Ok(StoredMembership::new(log_id, self.membership()?))
    }
    pub fn finish(&self) -> io::Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(invalid("trailing bytes"))
        }
    }
}

/// An entry's bytes: log id, payload type, payload.
pub fn encode_entry(entry: &Entry) -> io::Result<Vec<u8>> {
    let mut w = Writer::default();
    w.log_id(&entry.log_id);
    match &entry.payload {
        EntryPayload::Blank => w.u8(payload_type::BLANK),
        EntryPayload::Normal(batch) => {
            w.u8(payload_type::NORMAL);
            let bytes = encode_batch(&batch.0).map_err(|e| invalid(&e.to_string()))?;
            w.bytes(&bytes)?;
        }
        EntryPayload::Membership(m) => {
            w.u8(payload_type::MEMBERSHIP);
            w.membership(m)?;
        }
    }
    Ok(w.buf)
}

pub fn decode_entry(bytes: &[u8]) -> io::Result<Entry> {
    let mut r = Reader::new(bytes);
    let log_id = r.log_id()?;
    let payload = match r.u8()? {
        payload_type::BLANK => EntryPayload::Blank,
        payload_type::NORMAL => {
            let records = decode_batch(r.bytes()?).map_err(|e| invalid(&e.to_string()))?;
            EntryPayload::Normal(MetadataBatch(records))
        }
        payload_type::MEMBERSHIP => EntryPayload::Membership(r.membership()?),
        _ => return Err(invalid("unknown entry payload type")),
    };
    r.finish()?;
    Ok(Entry { log_id, payload })
}

/// `length: u32, crc32c: u32, payload`, the frame of every log entry.
pub fn frame(payload: &[u8]) -> io::Result<Vec<u8>> {
    let len = u32::try_from(payload.len()).map_err(|_| invalid("entry too long"))?;
    if len > RECORD_BYTES_MAX {
        return Err(invalid("entry above RECORD_BYTES_MAX"));
    }
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// The payload of the frame at the start of `bytes` and the frame's total length, or `None`
/// when the bytes there are not a whole, intact frame (a torn write at the tail).
pub fn read_frame(bytes: &[u8]) -> Option<(&[u8], usize)> {
    let header: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if len > RECORD_BYTES_MAX {
        return None;
    }
    let end = 8 + len as usize;
    let payload = bytes.get(8..end)?;
    (crc32c::crc32c(payload) == crc).then_some((payload, end))
}

/// Whether bytes that do not start with an intact frame are what a crash during the last
/// append leaves: a header cut short, or a single frame reaching (or passing) the end of the
/// file whose contents did not all reach the disk. Anything else is damage, not a torn write.
pub fn is_torn_tail(bytes: &[u8]) -> bool {
    let Some(header) = bytes.get(..4) else {
        return true;
    };
    // After a power cut the file can have grown without its new pages written: zeros.
    if bytes.iter().all(|b| *b == 0) {
        return true;
    }
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    // A length that is garbage (zeroed or random page contents) also ends the log, but only
    // when nothing that could be a later frame follows within the claimed extent.
    8usize.saturating_add(len as usize) >= bytes.len()
}

/// A small file's contents with a version byte in front and a CRC32C behind.
pub fn seal(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(FILE_VERSION);
    out.extend_from_slice(body);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// The body of a [`seal`]ed file, checked.
pub fn unseal(bytes: &[u8]) -> io::Result<&[u8]> {
    if bytes.len() < 5 {
        return Err(invalid("file too short"));
    }
    let (content, crc) = bytes.split_at(bytes.len() - 4);
    let crc = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32c::crc32c(content) != crc {
        return Err(invalid("checksum mismatch"));
    }
    if content[0] != FILE_VERSION {
        return Err(invalid("unknown file version"));
    }
    Ok(&content[1..])
}

/// Replaces `dir/name` with `contents` so that a reader sees the old or the new file, never a
/// mix: write a temporary file, fsync it, rename it over, fsync the directory. With
/// `durable == false` the fsyncs are skipped (for data that may be lost, never corrupted).
pub fn write_atomic(dir: &Path, name: &str, contents: &[u8], durable: bool) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = File::create(&tmp)?;
    file.write_all(contents)?;
    if durable {
        file.sync_all()?;
    }
    drop(file);
    fs::rename(&tmp, dir.join(name))?;
    if durable {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Reads `dir/name`, `None` when it does not exist.
pub fn read_optional(dir: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    match fs::read(dir.join(name)) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Makes a rename or a file creation in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    OpenOptions::new().read(true).open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_metadata::MetadataRecord;

    fn log_id(term: u64, node_id: u64, index: u64) -> LogId {
        LogId::new(LeaderId { term, node_id }, index)
    }

    #[test]
    fn entries_round_trip() {
        let nodes: BTreeMap<u64, BasicNode> =
            [(1, BasicNode::new("a:1")), (2, BasicNode::new("b:2"))].into();
        let membership = Membership::new(vec![[1u64].into()], nodes).unwrap();
        let entries = [
            Entry {
                log_id: log_id(1, 1, 1),
                payload: EntryPayload::Blank,
            },
            Entry {
                log_id: log_id(2, 1, 5),
                payload: EntryPayload::Normal(MetadataBatch(vec![MetadataRecord::ClusterId(
                    "c".into(),
                )])),
            },
            Entry {
                log_id: log_id(3, 2, 9),
                payload: EntryPayload::Membership(membership),
            },
        ];
        for entry in entries {
            let bytes = encode_entry(&entry).unwrap();
            assert_eq!(decode_entry(&bytes).unwrap(), entry);
            for cut in 0..bytes.len() {
                assert!(decode_entry(&bytes[..cut]).is_err());
            }
        }
    }

    #[test]
    fn blank_entry_bytes_are_exact() {
        let entry = Entry {
            log_id: log_id(1, 2, 3),
            payload: EntryPayload::Blank,
        };
        let mut expected = Vec::new();
        for v in [1u64, 2, 3] {
            expected.extend_from_slice(&v.to_be_bytes());
        }
        expected.push(0);
        assert_eq!(encode_entry(&entry).unwrap(), expected);
    }

    #[test]
    fn frames_detect_damage() {
        let framed = frame(b"hello").unwrap();
        assert_eq!(&framed[..4], &[0, 0, 0, 5]);
        assert_eq!(read_frame(&framed), Some((&b"hello"[..], 13)));
        assert_eq!(read_frame(&framed[..12]), None);
        let mut flipped = framed.clone();
        flipped[10] ^= 1;
        assert_eq!(read_frame(&flipped), None);
        assert_eq!(read_frame(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), None);
    }

    #[test]
    fn torn_tails_are_told_from_damage() {
        let framed = frame(b"hello").unwrap();
        assert!(is_torn_tail(&framed[..3]));
        assert!(is_torn_tail(&framed[..10]));
        let mut flipped = framed.clone();
        flipped[10] ^= 1;
        assert!(is_torn_tail(&flipped), "last frame with bad contents");
        let mut followed = flipped.clone();
        followed.extend_from_slice(&framed);
        assert!(
            !is_torn_tail(&followed),
            "bad frame with a good one after it"
        );
        assert!(is_torn_tail(&[0; 100]), "zeroed pages after a power cut");
    }

    #[test]
    fn sealed_files_detect_damage() {
        let sealed = seal(b"abc");
        assert_eq!(unseal(&sealed).unwrap(), b"abc");
        let mut bad = sealed.clone();
        bad[1] ^= 1;
        assert!(unseal(&bad).is_err());
        assert!(unseal(&sealed[..4]).is_err());
    }

    #[test]
    fn pseudo_random_bytes_never_panic() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 64) as usize;
            // Small byte values make plausible lengths, counts and type tags likely.
            let bytes: Vec<u8> = (0..len).map(|i| (state >> (i % 8 * 8)) as u8 % 4).collect();
            let _ = decode_entry(&bytes);
            let _ = read_frame(&bytes);
            let _ = unseal(&bytes);
            let _ = Reader::new(&bytes).membership();
        }
    }

    #[test]
    fn votes_round_trip() {
        let vote = Vote {
            leader_id: LeaderId {
                term: 7,
                node_id: 3,
            },
            committed: true,
        };
        let mut w = Writer::default();
        w.vote(&vote);
        assert_eq!(w.buf.len(), 17);
        assert_eq!(Reader::new(&w.buf).vote().unwrap(), vote);
    }
}
