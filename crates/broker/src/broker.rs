//! Broker start-up, the accept loop, background tasks and clean shutdown.

use crate::config::BrokerConfig;
use crate::connection;
use crate::partitions::{Partitions, METADATA_DIR};
use freshet_metadata::controller::{self, ControllerSettings};
use freshet_metadata::MetadataRecord;
use freshet_raft::MetadataQuorum;
use std::fs::File;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why a broker could not start (or stop) cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error("data directory {dir}: {source}")]
    DataDir { dir: String, source: std::io::Error },
    #[error("data directory {dir} is in use by another broker")]
    Locked { dir: String },
    #[error("metadata quorum: {0}")]
    Quorum(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("opening partition logs: {0}")]
    Logs(#[from] freshet_log::LogError),
    #[error("invalid advertised listener {0:?}: expected HOST:PORT")]
    Advertised(String),
}

/// What every connection and handler shares.
pub struct Context {
    pub config: BrokerConfig,
    pub quorum: MetadataQuorum,
    pub partitions: Arc<Partitions>,
    pub controller: ControllerSettings,
    pub advertised_host: String,
    pub advertised_port: i32,
    /// Becomes true when the broker is shutting down; long polls and connections end.
    pub shutdown: watch::Receiver<bool>,
    /// Producer ids for InitProducerId, from blocks the quorum assigns to this broker.
    pub producer_ids: crate::handlers::init_producer_id::ProducerIds,
    /// Incremental fetch sessions (KIP-227).
    pub fetch_sessions: crate::fetch_session::FetchSessionCache,
    /// The consumer group coordinator's request channel (its task runs `groups::run`).
    pub groups: crate::groups::GroupService,
}

impl Context {
    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    /// Proposes metadata records, then brings the partition registry up to date, so that a
    /// topic created by a request can be produced to as soon as the response is sent.
    pub async fn propose(
        &self,
        records: Vec<MetadataRecord>,
    ) -> Result<(), freshet_raft::ProposeError> {
        if records.is_empty() {
            return Ok(());
        }
        self.propose_committed(records).await?;
        self.sync_partitions().await;
        Ok(())
    }

    /// Proposes metadata records and returns once they are committed and applied, without
    /// waiting for the partition logs they create to open: the metadata loop opens them in the
    /// background (Kafka's controller answers CreateTopics and CreatePartitions the same way).
    /// Until a log is open, produce, fetch and ListOffsets get the retriable
    /// NOT_LEADER_OR_FOLLOWER; Metadata already names the leader, as Kafka's does.
    pub async fn propose_committed(
        &self,
        records: Vec<MetadataRecord>,
    ) -> Result<(), freshet_raft::ProposeError> {
        if records.is_empty() {
            return Ok(());
        }
        self.quorum.propose(records).await?;
        Ok(())
    }

    /// The error for a request naming a partition the registry does not hold: retriable
    /// NOT_LEADER_OR_FOLLOWER when the metadata gives it to this node (its log is still being
    /// opened), UNKNOWN_TOPIC_OR_PARTITION otherwise (Kafka's replica manager does the same).
    pub fn unserved_partition_error(&self, topic: &str, partition: i32) -> i16 {
        let image = self.quorum.image();
        let led_here = image
            .topic(topic)
            .and_then(|t| t.partitions.get(usize::try_from(partition).ok()?))
            .is_some_and(|p| p.leader == self.node_id());
        if led_here {
            crate::codes::NOT_LEADER_OR_FOLLOWER
        } else {
            crate::codes::UNKNOWN_TOPIC_OR_PARTITION
        }
    }

    /// Brings the partition registry up to the applied metadata, on a blocking thread (it
    /// creates and opens files).
    pub async fn sync_partitions(&self) {
        let image = self.quorum.image();
        let (partitions, node_id) = (self.partitions.clone(), self.node_id());
        let synced = tokio::task::spawn_blocking(move || partitions.sync(&image, node_id)).await;
        match synced {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "partition sync failed"),
            Err(e) => tracing::error!(error = %e, "partition sync panicked"),
        }
    }
}

/// A running broker.
pub struct Broker {
    local_addr: SocketAddr,
    ctx: Arc<Context>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Held for the broker's life: an exclusive lock on `<data_dir>/.lock`.
    _lock: File,
}

impl Broker {
    /// Opens the data directory and metadata, opens the led partitions' logs, binds the
    /// listener and starts serving.
    pub async fn start(config: BrokerConfig) -> Result<Broker, StartError> {
        let lock = lock_data_dir(&config)?;
        let listener =
            TcpListener::bind(&config.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: config.listen.clone(),
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.listen.clone(),
            source,
        })?;
        let (advertised_host, advertised_port) = advertised(&config, local_addr)?;
        let quorum = open_quorum(&config, &advertised_host, advertised_port).await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let ctx = Arc::new(Context {
            partitions: Arc::new(Partitions::new(&config)),
            controller: ControllerSettings {
                default_num_partitions: config.num_partitions,
                ..ControllerSettings::default()
            },
            config,
            quorum,
            advertised_host,
            advertised_port,
            shutdown: shutdown_rx,
            producer_ids: Default::default(),
            fetch_sessions: Default::default(),
            groups: Default::default(),
        });
        bootstrap_metadata(&ctx).await?;
        ctx.partitions.sync(&ctx.quorum.image(), ctx.node_id())?;
        let tasks = vec![
            tokio::spawn(accept_loop(ctx.clone(), listener)),
            tokio::spawn(metadata_loop(ctx.clone())),
            tokio::spawn(maintenance_loop(ctx.clone())),
            tokio::spawn(crate::groups::run(ctx.clone())),
        ];
        Ok(Broker {
            local_addr,
            ctx,
            shutdown,
            tasks,
            _lock: lock,
        })
    }

    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn cluster_id(&self) -> Option<String> {
        self.ctx.quorum.image().cluster_id().map(str::to_string)
    }

    /// The open log of a partition this broker leads. For tests and tools: a test arms
    /// `log.disk_faults()` to make that partition's disk fail while the broker runs.
    pub fn partition_log(&self, topic: &str, partition: i32) -> Option<Arc<freshet_log::Log>> {
        let p = self.ctx.partitions.get(topic, partition)?;
        Some(p.log.clone())
    }

    /// Stops accepting, ends connections, flushes and closes every log (writing the clean
    /// shutdown markers) and stops the metadata quorum.
    pub async fn shutdown(self) -> Result<(), StartError> {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.ctx.partitions.close_all();
        match Arc::try_unwrap(self.ctx) {
            Ok(ctx) => ctx
                .quorum
                .shutdown()
                .await
                .map_err(|e| StartError::Quorum(e.to_string())),
            // Connections still hold the context: they end on the shutdown signal; the quorum
            // stops when the process exits. Logs are already closed cleanly.
            Err(_) => Ok(()),
        }
    }
}

/// Starts work that every broker start needs and that can run before the configuration is
/// even read (see [`freshet_raft::prewarm`]); call it first thing in the process.
pub fn prewarm() {
    freshet_raft::prewarm();
}

fn lock_data_dir(config: &BrokerConfig) -> Result<File, StartError> {
    let dir = config.data_dir.display().to_string();
    let io = |source| StartError::DataDir {
        dir: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&config.data_dir).map_err(io)?;
    let file = File::create(config.data_dir.join(".lock")).map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StartError::Locked { dir }),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

fn advertised(config: &BrokerConfig, local: SocketAddr) -> Result<(String, i32), StartError> {
    let Some(addr) = &config.advertised_listener else {
        return Ok((local.ip().to_string(), i32::from(local.port())));
    };
    let bad = || StartError::Advertised(addr.clone());
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    Ok((host.trim_matches(['[', ']']).to_string(), i32::from(port)))
}

async fn open_quorum(
    config: &BrokerConfig,
    host: &str,
    port: i32,
) -> Result<MetadataQuorum, StartError> {
    let dir = config.data_dir.join(METADATA_DIR);
    std::fs::create_dir_all(&dir).map_err(|source| StartError::DataDir {
        dir: dir.display().to_string(),
        source,
    })?;
    let node_id = u64::try_from(config.node_id).unwrap_or_default();
    MetadataQuorum::open_single(&dir, node_id, &format!("{host}:{port}"))
        .await
        .map_err(|e| StartError::Quorum(e.to_string()))
}

/// On first start, records a fresh cluster id; on every start, (re)registers this broker with
/// its current address.
async fn bootstrap_metadata(ctx: &Context) -> Result<(), StartError> {
    let image = ctx.quorum.image();
    let cluster_id = new_cluster_id();
    let mut records = controller::bootstrap_cluster_id(&image, &cluster_id);
    let registered = image.broker(ctx.node_id());
    let port = u16::try_from(ctx.advertised_port).unwrap_or_default();
    if registered.is_none_or(|b| b.host != ctx.advertised_host || b.port != port) {
        records.extend(controller::register_broker(
            &image,
            ctx.node_id(),
            &ctx.advertised_host,
            port,
            None,
        ));
    }
    ctx.propose(records)
        .await
        .map_err(|e| StartError::Quorum(e.to_string()))
}

/// Kafka's cluster id form: 16 random bytes, URL-safe base64 without padding (22 chars).
fn new_cluster_id() -> String {
    base64_url(uuid::Uuid::new_v4().as_bytes())
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

async fn accept_loop(ctx: Arc<Context>, listener: TcpListener) {
    let mut shutdown = ctx.shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(connection::serve(ctx.clone(), stream, peer));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// Keeps the partition registry in step with metadata applied from any source.
async fn metadata_loop(ctx: Arc<Context>) {
    let mut applied = ctx.quorum.watch();
    let mut shutdown = ctx.shutdown.clone();
    loop {
        tokio::select! {
            changed = applied.changed() => {
                if changed.is_err() {
                    return;
                }
                ctx.sync_partitions().await;
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Time-based flushing and recovery-point checkpoints at least every second, and retention
/// every `log.retention.check.interval.ms` (Kafka's default: five minutes).
async fn maintenance_loop(ctx: Arc<Context>) {
    let mut shutdown = ctx.shutdown.clone();
    let retention_every_ms = ctx.config.log_retention_check_interval_ms.max(10);
    let period_ms = retention_every_ms.min(1000);
    let mut tick = tokio::time::interval(Duration::from_millis(period_ms));
    let mut last_retention = tokio::time::Instant::now();
    loop {
        tokio::select! {
            now = tick.tick() => {
                let retention_due =
                    now.duration_since(last_retention) >= Duration::from_millis(retention_every_ms);
                if retention_due {
                    last_retention = now;
                }
                let ctx = ctx.clone();
                let _ = tokio::task::spawn_blocking(move || run_maintenance(&ctx, retention_due)).await;
            }
            _ = shutdown.changed() => return,
        }
    }
}

fn run_maintenance(ctx: &Context, retention_due: bool) {
    let now_ms = freshet_log::Clock::now_ms(&freshet_log::SystemClock);
    for p in ctx.partitions.all() {
        p.expire_producers(now_ms);
        // An offline log already reported its disk error; it waits for a restart.
        if p.log.is_failed() {
            continue;
        }
        let done = if retention_due {
            p.log.run_maintenance(now_ms).map(|_| ())
        } else {
            p.log.run_flush_maintenance(now_ms)
        };
        match done {
            // A partition of a topic being deleted: its log closed after this pass took the
            // list of partitions.
            Ok(()) | Err(freshet_log::LogError::Closed) => {}
            Err(e) => tracing::warn!(dir = %p.log.dir().display(), error = %e, "log maintenance"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_look_like_kafkas() {
        assert_eq!(base64_url(&[0xfb; 16]), "-_v7-_v7-_v7-_v7-_v7-w");
        assert_eq!(base64_url(b"Man"), "TWFu");
        let id = new_cluster_id();
        assert_eq!(id.len(), 22);
        assert_ne!(id, new_cluster_id());
    }
}
