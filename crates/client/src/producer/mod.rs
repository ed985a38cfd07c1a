//! The producer: `send` hands a record to a background sender task and returns a future of
//! its acknowledgement. The task partitions records, batches them per partition
//! ([`accumulator`]), and sends batches to partition leaders with retries, in order, with
//! idempotent sequence numbers.

pub mod accumulator;
pub mod partitioner;
mod sender;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use freshet_records::Compression;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::cluster::{ClientConfig, Cluster};
use crate::error::{Error, ProduceError};

/// A record to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    pub topic: String,
    /// `None`: chosen by the partitioner (by key, or sticky for keyless records).
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Header keys may repeat; order is kept.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Milliseconds since the epoch; `None`: the time of `send`.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A keyless record with a value.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> ProducerRecord {
        ProducerRecord {
            topic: topic.into(),
            value: Some(value.into()),
            ..Default::default()
        }
    }

    pub fn with_key(mut self, key: impl Into<Bytes>) -> ProducerRecord {
        self.key = Some(key.into());
        self
    }

    pub fn with_partition(mut self, partition: i32) -> ProducerRecord {
        self.partition = Some(partition);
        self
    }

    pub fn with_header(mut self, key: impl Into<String>, value: Option<Bytes>) -> ProducerRecord {
        self.headers.push((key.into(), value));
        self
    }

    pub fn with_timestamp(mut self, timestamp_ms: i64) -> ProducerRecord {
        self.timestamp = Some(timestamp_ms);
        self
    }
}

/// Where an acknowledged record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: String,
    pub partition: i32,
    /// -1 with acks=0 (the broker does not answer).
    pub offset: i64,
    /// The record's timestamp, or the broker's append time when the topic uses
    /// LogAppendTime.
    pub timestamp: i64,
}

/// How many replicas must have a record before the leader answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// Do not wait for an answer at all.
    None,
    /// The leader only.
    Leader,
    /// Every in-sync replica (`acks=all`, `-1`).
    All,
}

impl Acks {
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    /// Parses `0`, `1`, `-1` or `all`.
    pub fn parse(text: &str) -> Option<Acks> {
        match text {
            "0" => Some(Acks::None),
            "1" => Some(Acks::Leader),
            "-1" | "all" => Some(Acks::All),
            _ => None,
        }
    }
}

/// Producer settings, named after the Java client's and with its defaults (Kafka 4).
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub client: ClientConfig,
    pub acks: Acks,
    pub compression: Compression,
    /// `batch.size`: a batch holding this many bytes is sent without lingering.
    pub batch_bytes_max: usize,
    /// `linger.ms`: how long a batch waits for more records.
    pub linger_ms: u64,
    /// `retries`: attempts after the first, bounded also by the delivery timeout.
    pub retries: u32,
    /// `retry.backoff.ms`.
    pub retry_backoff_ms: u64,
    /// `delivery.timeout.ms`: from `send` to acknowledgement, retries included.
    pub delivery_timeout_ms: u64,
    /// `max.in.flight.requests.per.connection`, applied per partition (at most 5 with
    /// idempotence, which the broker tracks for the last 5 batches).
    pub max_in_flight_per_partition: usize,
    /// `enable.idempotence`; `None` means on unless acks is not `all` (as in Java).
    pub enable_idempotence: Option<bool>,
    /// `buffer.memory`: records waiting in the producer, in estimated bytes.
    pub buffer_memory_bytes: usize,
    /// `max.request.size`: the largest single record accepted.
    pub max_request_bytes: usize,
}

impl ProducerConfig {
    pub fn new(bootstrap_servers: &str) -> ProducerConfig {
        ProducerConfig {
            client: ClientConfig::new(bootstrap_servers),
            acks: Acks::All,
            compression: Compression::None,
            batch_bytes_max: 16_384,
            linger_ms: 5,
            retries: i32::MAX as u32,
            retry_backoff_ms: 100,
            delivery_timeout_ms: 120_000,
            max_in_flight_per_partition: 5,
            enable_idempotence: None,
            buffer_memory_bytes: 32 * 1024 * 1024,
            max_request_bytes: 1024 * 1024,
        }
    }

    /// Whether the producer will be idempotent, or why the settings conflict.
    pub fn idempotent(&self) -> Result<bool, Error> {
        match self.enable_idempotence {
            None => Ok(self.acks == Acks::All),
            Some(false) => Ok(false),
            Some(true) if self.acks != Acks::All => {
                Err(Error::Config("enable.idempotence requires acks=all".into()))
            }
            Some(true) if self.max_in_flight_per_partition > 5 => Err(Error::Config(
                "enable.idempotence requires max.in.flight.requests.per.connection <= 5".into(),
            )),
            Some(true) => Ok(true),
        }
    }
}

/// Messages from the handle to the sender task.
pub(crate) enum Command {
    Send(Box<Submission>),
    Flush(oneshot::Sender<()>),
    Close(oneshot::Sender<()>),
}

pub(crate) struct Submission {
    record: ProducerRecord,
    timestamp_ms: i64,
    size_estimate_bytes: usize,
    reply: oneshot::Sender<Result<RecordMetadata, ProduceError>>,
}

/// Bytes of records accepted by `send` and not yet completed: the `buffer.memory` bound.
#[derive(Debug, Default)]
pub(crate) struct BufferGauge {
    bytes: AtomicUsize,
    released: Notify,
}

impl BufferGauge {
    pub(crate) fn release(&self, bytes: usize) {
        self.bytes.fetch_sub(bytes, Ordering::AcqRel);
        self.released.notify_waiters();
    }
}

/// The future of one record's acknowledgement.
#[derive(Debug)]
pub struct DeliveryFuture {
    inner: DeliveryState,
}

#[derive(Debug)]
enum DeliveryState {
    Waiting(oneshot::Receiver<Result<RecordMetadata, ProduceError>>),
    Failed(Option<ProduceError>),
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata, ProduceError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.inner {
            DeliveryState::Waiting(receiver) => Pin::new(receiver)
                .poll(cx)
                .map(|result| result.unwrap_or(Err(ProduceError::Closed))),
            DeliveryState::Failed(error) => {
                Poll::Ready(Err(error.take().unwrap_or(ProduceError::Closed)))
            }
        }
    }
}

/// A Kafka producer. Cheap to share by reference across tasks; `send` never blocks.
#[derive(Debug)]
pub struct Producer {
    commands: mpsc::UnboundedSender<Command>,
    buffer: Arc<BufferGauge>,
    config: ProducerConfig,
    task: tokio::task::JoinHandle<()>,
}

impl Producer {
    /// Starts the sender task. Connections open lazily, at the first send.
    pub fn new(config: ProducerConfig) -> Result<Producer, Error> {
        if config.max_in_flight_per_partition == 0 {
            return Err(Error::Config(
                "max.in.flight.requests.per.connection must be at least 1".into(),
            ));
        }
        let idempotent = config.idempotent()?;
        let cluster = Arc::new(Cluster::new(config.client.clone())?);
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let buffer = Arc::new(BufferGauge::default());
        let task = tokio::spawn(sender::run(sender::Sender::new(
            cluster,
            config.clone(),
            idempotent,
            commands_rx,
            buffer.clone(),
        )));
        Ok(Producer {
            commands,
            buffer,
            config,
            task,
        })
    }

    /// Queues `record` for sending and returns the future of its acknowledgement. Records
    /// sent to the same partition are written in `send` order. Fails at once with
    /// `BufferFull` when `buffer.memory` bytes are already waiting (see [`Producer::send_wait`]).
    pub fn send(&self, record: ProducerRecord) -> DeliveryFuture {
        let size_estimate_bytes = submission_size(&record);
        if size_estimate_bytes > self.config.max_request_bytes {
            return failed(ProduceError::RecordTooLarge {
                bytes: size_estimate_bytes,
                max_request_bytes: self.config.max_request_bytes,
            });
        }
        let buffered = self
            .buffer
            .bytes
            .fetch_add(size_estimate_bytes, Ordering::AcqRel);
        if buffered > 0 && buffered + size_estimate_bytes > self.config.buffer_memory_bytes {
            self.buffer
                .bytes
                .fetch_sub(size_estimate_bytes, Ordering::AcqRel);
            return failed(ProduceError::BufferFull {
                buffer_memory_bytes: self.config.buffer_memory_bytes,
            });
        }
        let (reply, receiver) = oneshot::channel();
        let timestamp_ms = record.timestamp.unwrap_or_else(crate::unix_now_ms);
        let submission = Submission {
            record,
            timestamp_ms,
            size_estimate_bytes,
            reply,
        };
        if self
            .commands
            .send(Command::Send(Box::new(submission)))
            .is_err()
        {
            self.buffer.release(size_estimate_bytes);
            return failed(ProduceError::Closed);
        }
        DeliveryFuture {
            inner: DeliveryState::Waiting(receiver),
        }
    }

    /// Like [`Producer::send`], but waits for room in `buffer.memory` instead of failing.
    pub async fn send_wait(&self, record: ProducerRecord) -> DeliveryFuture {
        let size_estimate_bytes = submission_size(&record);
        loop {
            let released = self.buffer.released.notified();
            let buffered = self.buffer.bytes.load(Ordering::Acquire);
            if buffered == 0 || buffered + size_estimate_bytes <= self.config.buffer_memory_bytes {
                return self.send(record);
            }
            released.await;
        }
    }

    /// Sends every queued record now (ignoring `linger.ms`) and waits until each has its
    /// outcome.
    pub async fn flush(&self) -> Result<(), ProduceError> {
        let (done, done_rx) = oneshot::channel();
        self.commands
            .send(Command::Flush(done))
            .map_err(|_| ProduceError::Closed)?;
        done_rx.await.map_err(|_| ProduceError::Closed)
    }

    /// Flushes, then stops the sender task and closes its connections.
    pub async fn close(self) -> Result<(), ProduceError> {
        let (done, done_rx) = oneshot::channel();
        self.commands
            .send(Command::Close(done))
            .map_err(|_| ProduceError::Closed)?;
        let result = done_rx.await.map_err(|_| ProduceError::Closed);
        let _ = self.task.await;
        result
    }
}

fn failed(error: ProduceError) -> DeliveryFuture {
    DeliveryFuture {
        inner: DeliveryState::Failed(Some(error)),
    }
}

fn submission_size(record: &ProducerRecord) -> usize {
    accumulator::RecordData {
        timestamp_ms: 0,
        key: record.key.clone(),
        value: record.value.clone(),
        headers: record.headers.clone(),
    }
    .size_estimate_bytes()
}
