//! Test support: the `freshet` binary as a child process, and a minimal blocking Kafka
//! protocol client for driving it byte-exactly.

#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use freshet_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use freshet_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use freshet_protocol::messages::{
    FetchRequest, FetchResponse, ProduceRequest, ProduceResponse, RequestHeader,
};
use freshet_protocol::{ApiKey, Decode, Encode, Request, Response, ResponseHeader};
use freshet_records::{BatchBuilder, BatchOptions, NewRecord};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// A broker running as a child process on a free loopback port.
pub struct BrokerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
}

impl BrokerProcess {
    pub fn start(data_dir: &Path) -> BrokerProcess {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(data_dir, port)
    }

    pub fn start_on(data_dir: &Path, port: u16) -> BrokerProcess {
        Self::spawn(data_dir, port, "warn", Stdio::inherit())
    }

    /// Starts a broker on a free port logging at `info` (without colours) into the file `log`.
    pub fn start_logging_to(data_dir: &Path, log: &Path) -> BrokerProcess {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let file = std::fs::File::create(log).expect("create the broker log");
        Self::spawn(data_dir, port, "info", Stdio::from(file))
    }

    fn spawn(data_dir: &Path, port: u16, rust_log: &str, stderr: Stdio) -> BrokerProcess {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_freshet"))
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", &addr.to_string()])
            .env("RUST_LOG", rust_log)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn freshet");
        let broker = BrokerProcess {
            child,
            addr,
            data_dir: data_dir.to_path_buf(),
        };
        broker.wait_ready();
        broker
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect(self.addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("broker at {} did not become ready", self.addr);
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn terminate(&mut self) {
        self.signal("TERM");
        self.child.wait().unwrap();
    }

    /// Sends the signal named `name` (`TERM`, `INT`, ...) to the broker process.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} {pid} failed");
    }

    /// The exit status once the process ends, or `None` if it is still running at `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_exit(&mut self.child, timeout)
    }
}

/// The exit status once `child` ends, or `None` if it is still running at `timeout`.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How long one `freshet` client command may take before the test gives up on it.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the `freshet` binary against `broker` with `stdin` as its standard input; kills it
/// and panics (with what it printed) if it runs longer than [`CLI_TIMEOUT`].
pub fn freshet(broker: &BrokerProcess, args: &[&str], stdin: &str) -> Output {
    let mut child = spawn_freshet(broker, args, Stdio::piped());
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_owned();
    // Written from a thread: a large input must not block while the child's output fills up.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let stdout = read_all_in_background(child.stdout.take().unwrap());
    let stderr = read_all_in_background(child.stderr.take().unwrap());
    let Some(status) = wait_exit(&mut child, CLI_TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "freshet {args:?} still running after {CLI_TIMEOUT:?}; stdout: {}; stderr: {}",
            String::from_utf8_lossy(&stdout.join().unwrap()),
            String::from_utf8_lossy(&stderr.join().unwrap())
        );
    };
    writer.join().unwrap();
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// The standard output of a command that must have succeeded.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Starts the `freshet` binary against `broker` without waiting: stdout and stderr piped.
pub fn spawn_freshet(broker: &BrokerProcess, args: &[&str], stdin: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_freshet"))
        .args(args)
        .env("FRESHET_BOOTSTRAP", broker.addr.to_string())
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn freshet")
}

fn read_all_in_background(
    mut from: impl Read + Send + 'static,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        bytes
    })
}

/// The lines a child process writes, as they come, read by a thread.
pub struct Lines(std::sync::mpsc::Receiver<String>);

impl Lines {
    pub fn of(from: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(from)) {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    /// The next line, or `None` if none came within `timeout` or the stream ended.
    pub fn next_within(&self, timeout: Duration) -> Option<String> {
        self.0.recv_timeout(timeout).ok()
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One connection speaking raw Kafka protocol, one request at a time.
pub struct RawClient {
    pub stream: TcpStream,
    correlation_id: i32,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> std::io::Result<RawClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(RawClient {
            stream,
            correlation_id: 0,
        })
    }

    pub fn call(&mut self, version: i16, request: Request) -> std::io::Result<Response> {
        let api_key = request.api_key();
        self.correlation_id += 1;
        let header = RequestHeader {
            request_api_key: api_key.as_i16(),
            request_api_version: version,
            correlation_id: self.correlation_id,
            client_id: Some("freshet-test".into()),
            ..Default::default()
        };
        let mut body = BytesMut::new();
        header
            .encode(&mut body, api_key.request_header_version(version))
            .unwrap();
        request.encode(&mut body, version).unwrap();
        self.send_frame(&body)?;
        let mut frame = self.read_frame()?;
        let rh =
            ResponseHeader::decode(&mut frame, api_key.response_header_version(version)).unwrap();
        assert_eq!(rh.correlation_id, self.correlation_id);
        Ok(Response::decode(api_key, version, &mut frame).unwrap())
    }

    pub fn send_frame(&mut self, body: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(&(body.len() as u32).to_be_bytes())?;
        self.stream.write_all(body)
    }

    pub fn read_frame(&mut self) -> std::io::Result<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut buf)?;
        Ok(Bytes::from(buf))
    }

    /// Produces one batch of `values` to partition 0 of `topic`; returns (error code, base offset).
    pub fn produce(
        &mut self,
        topic: &str,
        acks: i16,
        values: &[&[u8]],
    ) -> std::io::Result<(i16, i64)> {
        let request = ProduceRequest {
            acks,
            timeout_ms: 30_000,
            topic_data: vec![TopicProduceData {
                name: topic.into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(batch(values)),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        match self.call(9, Request::Produce(request))? {
            Response::Produce(ProduceResponse { responses, .. }) => {
                let p = &responses[0].partition_responses[0];
                Ok((p.error_code, p.base_offset))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Fetches partition 0 of `topic` from `offset` (no waiting); returns error, high watermark, records.
    pub fn fetch(&mut self, topic: &str, offset: i64) -> std::io::Result<(i16, i64, Bytes)> {
        let request = FetchRequest {
            replica_id: -1,
            max_wait_ms: 0,
            min_bytes: 1,
            max_bytes: 50 << 20,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: topic.into(),
                partitions: vec![FetchPartition {
                    partition: 0,
                    fetch_offset: offset,
                    current_leader_epoch: -1,
                    partition_max_bytes: 10 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        match self.call(12, Request::Fetch(request))? {
            Response::Fetch(FetchResponse { responses, .. }) => {
                let p = &responses[0].partitions[0];
                Ok((
                    p.error_code,
                    p.high_watermark,
                    p.records.clone().unwrap_or_default(),
                ))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// An uncompressed batch of the given values, no keys.
pub fn batch(values: &[&[u8]]) -> Bytes {
    let mut b = BatchBuilder::new(BatchOptions::default());
    // Now: a timestamp older than retention.ms (7 days) lets retention delete the records.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for v in values {
        b.push(&NewRecord {
            timestamp_ms: now_ms,
            key: None,
            value: Some(v),
            headers: &[],
        })
        .unwrap();
    }
    Bytes::from(b.build().unwrap())
}

/// Every (offset, value) in the fetched bytes.
pub fn decode_values(mut bytes: Bytes) -> Vec<(i64, Bytes)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let header = freshet_records::BatchHeader::parse(&bytes).expect("batch header");
        let len = header.total_len();
        if len > bytes.len() {
            break;
        }
        let one = bytes.split_to(len);
        for r in freshet_records::records(&one, 64 << 20).expect("records") {
            let r = r.expect("record");
            out.push((r.offset, r.value.unwrap_or_default()));
        }
    }
    out
}

pub fn api_key_of(r: &Request) -> ApiKey {
    r.api_key()
}

/// Creates a topic with `partitions` partitions, panicking on any error.
pub fn create_topic(client: &mut RawClient, name: &str, partitions: i32) {
    use freshet_protocol::messages::create_topics_request::CreatableTopic;
    use freshet_protocol::messages::CreateTopicsRequest;
    let request = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 30_000,
        ..Default::default()
    };
    match client.call(7, Request::CreateTopics(request)).unwrap() {
        Response::CreateTopics(r) => {
            assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message)
        }
        other => panic!("unexpected {other:?}"),
    }
    wait_served(client, name, partitions);
}

/// Polls ListOffsets until every partition of `topic` is served: CreateTopics is answered
/// once the topic is committed, and its logs open in the background (NOT_LEADER_OR_FOLLOWER
/// meanwhile), as with Kafka.
pub fn wait_served(client: &mut RawClient, topic: &str, partitions: i32) {
    use freshet_protocol::messages::list_offsets_request::{
        ListOffsetsPartition, ListOffsetsTopic,
    };
    use freshet_protocol::messages::ListOffsetsRequest;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let request = ListOffsetsRequest {
            replica_id: -1,
            topics: vec![ListOffsetsTopic {
                name: topic.into(),
                partitions: (0..partitions)
                    .map(|p| ListOffsetsPartition {
                        partition_index: p,
                        current_leader_epoch: -1,
                        timestamp: -1,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let served = match client.call(7, Request::ListOffsets(request)).unwrap() {
            Response::ListOffsets(r) => r
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .filter(|p| p.error_code == 0)
                .count(),
            other => panic!("unexpected {other:?}"),
        };
        if served >= usize::try_from(partitions).unwrap_or(0) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{topic}: {served} of {partitions} partitions served after 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A two-thread tokio runtime for tests that drive `freshet-client` directly.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
