//! Hostile and malformed frames from several connections while a normal client produces:
//! the broker stays up, stays small, and the normal client sees no error.

mod support;

use freshet_protocol::messages::ApiVersionsRequest;
use freshet_protocol::{Decode, Request, Response};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use support::{BrokerProcess, RawClient};

/// Frames that must each close (or be answered on) their own connection and nothing else.
fn hostile_frames() -> Vec<Vec<u8>> {
    let mut frames = vec![
        // Declares i32::MAX bytes: over socket.request.max.bytes.
        0x7fff_ffffu32.to_be_bytes().to_vec(),
        // Negative size.
        0xffff_fff0u32.to_be_bytes().to_vec(),
        // Unknown API key 999.
        framed(&[0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff]),
        // A Produce v9 header then an array claiming i32::MAX topics in a 12-byte body.
        framed(&[
            0, 0, 0, 9, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0,
        ]),
        // Metadata v1 whose topics array claims 2^31-1 entries.
        framed(&[0, 3, 0, 1, 0, 0, 0, 3, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff]),
        // Too short for a header.
        framed(&[0, 1]),
        // Fetch v12 with a truncated body.
        framed(&[0, 1, 0, 12, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0]),
    ];
    // Pseudo-random garbage, fixed seed so a failure reproduces.
    let mut x: u32 = 0x9e37_79b9;
    for len in [1usize, 7, 64, 1000] {
        let body: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        frames.push(framed(&body));
    }
    frames
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

fn send_and_drop(addr: SocketAddr, bytes: &[u8]) {
    if let Ok(mut s) = TcpStream::connect(addr) {
        let _ = s.write_all(bytes);
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let _ = std::io::Read::read(&mut s, &mut [0u8; 64]);
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn hostile_frames_harm_only_their_own_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path());
    let addr = broker.addr;
    let mut normal = RawClient::connect(addr).unwrap();
    // Auto-create the topic the normal client produces to.
    normal
        .call(
            12,
            Request::Metadata(freshet_protocol::messages::MetadataRequest {
                topics: Some(vec![
                    freshet_protocol::messages::metadata_request::MetadataRequestTopic {
                        name: Some("steady".into()),
                        ..Default::default()
                    },
                ]),
                allow_auto_topic_creation: true,
                ..Default::default()
            }),
        )
        .unwrap();
    let attacker = std::thread::spawn(move || {
        for _ in 0..5 {
            for f in hostile_frames() {
                send_and_drop(addr, &f);
            }
        }
        // Connections that promise 100 MiB and send 10 bytes, held open together.
        let held: Vec<TcpStream> = (0..50)
            .filter_map(|_| {
                let mut s = TcpStream::connect(addr).ok()?;
                s.write_all(&(100u32 << 20).to_be_bytes()).ok()?;
                s.write_all(&[0u8; 10]).ok()?;
                Some(s)
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        held
    });
    for i in 0..200 {
        let value = format!("v{i}");
        let (code, offset) = normal.produce("steady", 1, &[value.as_bytes()]).unwrap();
        assert_eq!((code, offset), (0, i), "normal client disturbed");
    }
    let held = attacker.join().unwrap();
    assert_eq!(held.len(), 50);
    let rss = rss_kib(broker.child.id());
    assert!(
        rss < 150 * 1024,
        "broker RSS {rss} KiB after 50 connections each declaring 100 MiB"
    );
    assert!(broker.child.try_wait().unwrap().is_none(), "broker exited");
    let mut fresh = RawClient::connect(addr).unwrap();
    match fresh
        .call(3, Request::ApiVersions(ApiVersionsRequest::default()))
        .unwrap()
    {
        Response::ApiVersions(r) => assert_eq!(r.error_code, 0),
        other => panic!("unexpected {other:?}"),
    }
    drop(held);
    broker.terminate();
}

/// KIP-511: an ApiVersions version newer than the broker's is answered (not closed) with
/// UNSUPPORTED_VERSION and the broker's ranges, in response header v0 and body v0.
#[test]
fn newer_api_versions_gets_our_ranges_at_v0() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path());
    let mut c = RawClient::connect(broker.addr).unwrap();
    // ApiVersions v99, header v2: key, version, correlation id 77, client id "x", no tags;
    // then a body this broker cannot know.
    c.send_frame(&[0, 18, 0, 99, 0, 0, 0, 77, 0, 1, b'x', 0, 0xde, 0xad])
        .unwrap();
    let mut frame = c.read_frame().unwrap();
    let header = freshet_protocol::ResponseHeader::decode(&mut frame, 0).unwrap();
    assert_eq!(header.correlation_id, 77);
    let body = freshet_protocol::messages::ApiVersionsResponse::decode(&mut frame, 0).unwrap();
    assert_eq!(body.error_code, 35, "UNSUPPORTED_VERSION");
    let versions = body
        .api_keys
        .iter()
        .find(|k| k.api_key == 18)
        .expect("ApiVersions listed");
    assert_eq!((versions.min_version, versions.max_version), (0, 4));
    // The connection stays usable.
    match c
        .call(3, Request::ApiVersions(ApiVersionsRequest::default()))
        .unwrap()
    {
        Response::ApiVersions(r) => assert_eq!(r.error_code, 0),
        other => panic!("unexpected {other:?}"),
    }
}
