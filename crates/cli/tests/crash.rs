//! Kill -9 during a produce load: every record acknowledged under acks=all (fsync, the
//! default) must be there after restart, at the offset it was acknowledged with, and offsets
//! must stay dense. Rounds: FRESHET_CRASH_ROUNDS (default 3).

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use support::{decode_values, BrokerProcess, RawClient};

const PRODUCERS: usize = 3;

/// Acknowledged records: (offset, value), shared by the producer threads.
type Acked = Arc<Mutex<Vec<(i64, Vec<u8>)>>>;

/// Produces until the connection breaks, recording each acknowledged (offset, value).
fn produce_until_killed(addr: std::net::SocketAddr, tag: String, acked: Acked) {
    let Ok(mut client) = RawClient::connect(addr) else {
        return;
    };
    for i in 0.. {
        let value = format!("{tag}-{i}").into_bytes();
        match client.produce("crash", -1, &[&value]) {
            Ok((0, offset)) => acked.lock().unwrap().push((offset, value)),
            Ok((code, _)) => panic!("produce refused with error {code}"),
            Err(_) => return,
        }
    }
}

fn all_records(addr: std::net::SocketAddr) -> (i64, BTreeMap<i64, Vec<u8>>) {
    let mut client = RawClient::connect(addr).unwrap();
    let mut out = BTreeMap::new();
    let mut next = 0;
    loop {
        let (code, hw, bytes) = client.fetch("crash", next).unwrap();
        assert_eq!(code, 0);
        let values = decode_values(bytes);
        if values.is_empty() {
            assert_eq!(next, hw, "fetch returned nothing before the high watermark");
            return (hw, out);
        }
        for (offset, value) in values {
            out.insert(offset, value.to_vec());
            next = offset + 1;
        }
    }
}

#[test]
fn acknowledged_records_survive_sigkill() {
    let rounds: usize = std::env::var("FRESHET_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    eprintln!("crash test seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path());
    support::create_topic(&mut RawClient::connect(broker.addr).unwrap(), "crash", 1);
    let acked: Acked = Arc::default();
    let mut rng = seed;
    for round in 0..rounds {
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|t| {
                let (addr, acked) = (broker.addr, acked.clone());
                std::thread::spawn(move || {
                    produce_until_killed(addr, format!("r{round}-p{t}"), acked)
                })
            })
            .collect();
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(200 + (rng >> 33) % 600));
        broker.kill9();
        for p in producers {
            p.join().unwrap();
        }
        broker = BrokerProcess::start(dir.path());
        let (hw, stored) = all_records(broker.addr);
        let acked = acked.lock().unwrap();
        assert!(
            acked.len() > round,
            "round {round}: no produce was acknowledged"
        );
        for (offset, value) in acked.iter() {
            assert_eq!(
                stored.get(offset),
                Some(value),
                "acknowledged record at offset {offset} lost or changed"
            );
        }
        let dense: Vec<i64> = (0..hw).collect();
        assert_eq!(
            stored.keys().copied().collect::<Vec<_>>(),
            dense,
            "offsets are not dense"
        );
        eprintln!("round {round}: {} acknowledged, {hw} stored", acked.len());
    }
}
