//! The state machine: the [`MetadataImage`] the applied entries produce, published to readers
//! through a watch channel, and its snapshots.
//!
//! The image itself is not written on every apply. After a restart it is rebuilt from the
//! last snapshot (`metadata-snapshot`) plus the log entries openraft re-applies up to the
//! committed index, which is why the log store keeps `raft-committed`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use freshet_metadata::codec::{decode_batch, encode_batch};
use freshet_metadata::MetadataImage;
use futures_util::{Stream, StreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use tokio::sync::watch;

use crate::disk::{self, invalid, Reader, Writer};
use crate::types::{LogId, MetaRaft, RejectedRecord, Snapshot, SnapshotMeta, StoredMembership};

const SNAPSHOT_FILE: &str = "metadata-snapshot";

/// The image as of one applied log index. Cheap to clone (an `Arc`).
#[derive(Clone, Debug, Default)]
pub struct AppliedImage {
    /// Index of the last applied Raft entry (0 before the first).
    pub applied_index: u64,
    pub image: Arc<MetadataImage>,
}

/// The openraft state machine of the metadata log.
pub struct MetadataStateMachine {
    dir: PathBuf,
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    published: watch::Sender<AppliedImage>,
}

impl MetadataStateMachine {
    /// Loads the last snapshot from `dir`, if any. The returned receiver sees every applied
    /// entry from then on.
    pub fn open(dir: &Path) -> io::Result<(Self, watch::Receiver<AppliedImage>)> {
        std::fs::create_dir_all(dir)?;
        let (last_applied, last_membership, image) = match read_snapshot_file(dir)? {
            Some((meta, data)) => (meta.last_log_id, meta.last_membership, decode_image(&data)?),
            None => (None, StoredMembership::default(), MetadataImage::new()),
        };
        let image = Arc::new(image);
        let applied = AppliedImage {
            applied_index: last_applied.map_or(0, |id| id.index),
            image: image.clone(),
        };
        let (published, receiver) = watch::channel(applied);
        let sm = MetadataStateMachine {
            dir: dir.to_path_buf(),
            image,
            last_applied,
            last_membership,
            published,
        };
        Ok((sm, receiver))
    }

    fn publish(&self) {
        let applied = AppliedImage {
            applied_index: self.last_applied.map_or(0, |id| id.index),
            image: self.image.clone(),
        };
        // Nobody listening is fine: the quorum handle may be gone during shutdown.
        let _ = self.published.send(applied);
    }

    /// Applies one entry's payload; returns the outcome for the proposer.
    fn apply_payload(
        &mut self,
        log_id: LogId,
        payload: &EntryPayload<crate::MetadataBatch, u64, openraft::BasicNode>,
    ) -> Result<(), RejectedRecord> {
        self.last_applied = Some(log_id);
        match payload {
            EntryPayload::Blank => Ok(()),
            EntryPayload::Membership(m) => {
                self.last_membership = StoredMembership::new(Some(log_id), m.clone());
                Ok(())
            }
            EntryPayload::Normal(batch) => {
                let mut next = (*self.image).clone();
                next.apply_batch(&batch.0)
                    .map_err(|(index, error)| RejectedRecord { index, error })?;
                self.image = Arc::new(next);
                Ok(())
            }
        }
    }
}

fn decode_image(data: &[u8]) -> io::Result<MetadataImage> {
    let records = decode_batch(data).map_err(|e| invalid(&format!("snapshot: {e}")))?;
    MetadataImage::from_records(&records)
        .map_err(|(i, e)| invalid(&format!("snapshot record {i}: {e}")))
}

/// `metadata-snapshot`, sealed: last log id, membership, image records.
fn write_snapshot_file(dir: &Path, meta: &SnapshotMeta, data: &[u8]) -> io::Result<()> {
    let mut w = Writer::default();
    w.option_log_id(meta.last_log_id.as_ref());
    w.stored_membership(&meta.last_membership)?;
    w.bytes(data)?;
    disk::write_atomic(dir, SNAPSHOT_FILE, &disk::seal(&w.buf), true)
}

fn read_snapshot_file(dir: &Path) -> io::Result<Option<(SnapshotMeta, Vec<u8>)>> {
    let Some(bytes) = disk::read_optional(dir, SNAPSHOT_FILE)? else {
        return Ok(None);
    };
    let body = disk::unseal(&bytes).map_err(|e| invalid(&format!("{SNAPSHOT_FILE}: {e}")))?;
    let mut r = Reader::new(body);
    let last_log_id = r.option_log_id()?;
    let last_membership = r.stored_membership()?;
    let data = r.bytes()?.to_vec();
    r.finish()?;
    let meta = SnapshotMeta {
        last_log_id,
        last_membership,
    };
    Ok(Some((meta, data)))
}

/// Builds a snapshot of the image as it was when the builder was created.
pub struct MetadataSnapshotBuilder {
    dir: PathBuf,
    meta: SnapshotMeta,
    image: Arc<MetadataImage>,
}

impl RaftSnapshotBuilder<MetaRaft> for MetadataSnapshotBuilder {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let data = encode_batch(&self.image.to_records()).map_err(|e| invalid(&e.to_string()))?;
        write_snapshot_file(&self.dir, &self.meta, &data)?;
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: data,
        })
    }
}

impl RaftStateMachine<MetaRaft> for MetadataStateMachine {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = MetadataSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<MetaRaft>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let outcome = self.apply_payload(entry.log_id, &entry.payload);
            // Readers see the new image before the proposer hears back, so a proposer that
            // reads the image after `propose` returns always sees its own change.
            self.publish();
            if let Some(responder) = responder {
                responder.send(outcome);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        MetadataSnapshotBuilder {
            dir: self.dir.clone(),
            meta: SnapshotMeta {
                last_log_id: self.last_applied,
                last_membership: self.last_membership.clone(),
            },
            image: self.image.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Vec<u8>,
    ) -> Result<(), io::Error> {
        let image = decode_image(&snapshot)?;
        write_snapshot_file(&self.dir, meta, &snapshot)?;
        self.image = Arc::new(image);
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        Ok(read_snapshot_file(&self.dir)?.map(|(meta, snapshot)| Snapshot { meta, snapshot }))
    }
}
