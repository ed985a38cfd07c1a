//! `freshet group` end to end against a Freshet broker process: exact output of describe
//! (empty and active groups, members view), reset-offsets plans as dry run and executed, and
//! one-line errors with a failure exit.

mod support;

use std::process::{Command, Output};

use bytes::BytesMut;
use freshet_client::{Admin, ClientConfig, Producer, ProducerConfig, ProducerRecord};
use freshet_protocol::messages::consumer_protocol_assignment::TopicPartition as WireTp;
use freshet_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use freshet_protocol::messages::leave_group_request::MemberIdentity;
use freshet_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use freshet_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, JoinGroupRequest, LeaveGroupRequest,
    SyncGroupRequest,
};
use freshet_protocol::{Encode, Request, Response};
use support::{BrokerProcess, RawClient};

/// 2026-11-23T10:00:00Z.
const BASE_MS: i64 = 1_795_428_000_000;

fn freshet(broker: &BrokerProcess, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_freshet"))
        .args(args)
        .env("FRESHET_BOOTSTRAP", broker.addr.to_string())
        .output()
        .unwrap()
}

/// `freshet group reset-offsets --group GROUP ARGS...`.
fn reset(broker: &BrokerProcess, group: &str, args: &[&str]) -> Output {
    let mut all = vec!["group", "reset-offsets", "--group", group];
    all.extend_from_slice(args);
    freshet(broker, &all)
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The one line a failed command prints, and that nothing went to stdout.
fn failure(out: Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    err.trim_end().to_owned()
}

/// Topic `orders` with 3 partitions: 10 records in 0 (timestamps BASE + i s), 4 in 1, none
/// in 2.
fn orders(broker: &BrokerProcess) {
    ok(freshet(broker, &["topic", "create", "orders", "-p", "3"]));
    let servers = broker.addr.to_string();
    support::runtime().block_on(async {
        let producer = Producer::new(ProducerConfig::new(&servers)).unwrap();
        for (partition, count) in [(0, 10), (1, 4)] {
            for i in 0..count {
                let record = ProducerRecord::new("orders", format!("o{i}"))
                    .with_partition(partition)
                    .with_timestamp(BASE_MS + 1_000 * i);
                producer.send(record).await.unwrap();
            }
        }
        producer.close().await.unwrap();
    });
}

/// Kafka's table layout: left-aligned columns at least `min` wide, one space apart.
fn table(header: &[&str], min: &[usize], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header
        .iter()
        .zip(min)
        .map(|(h, m)| h.len().max(*m))
        .collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join(" ").trim_end());
        out.push('\n');
    }
    out
}

#[test]
fn reset_plans_and_describe_of_an_empty_group() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path());
    orders(&broker);

    let plan = ok(reset(
        &broker,
        "billing",
        &["--topic", "orders", "--to-earliest", "--execute"],
    ));
    assert_eq!(
        plan,
        "\n\
         GROUP           TOPIC           PARTITION  NEW-OFFSET\n\
         billing         orders          0          0\n\
         billing         orders          1          0\n\
         billing         orders          2          0\n"
    );
    // Beyond the end: kept at the log end offset.
    let plan = ok(freshet(
        &broker,
        &[
            "group",
            "reset-offsets",
            "-g",
            "billing",
            "--topic",
            "orders:1,0",
            "--to-offset",
            "7",
            "--execute",
        ],
    ));
    assert_eq!(
        plan,
        "\n\
         GROUP           TOPIC           PARTITION  NEW-OFFSET\n\
         billing         orders          0          7\n\
         billing         orders          1          4\n"
    );
    let described = ok(freshet(&broker, &["group", "describe", "billing"]));
    assert_eq!(
        described,
        "\n\
         Consumer group 'billing' has no active members.\n\
         \n\
         GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID     HOST            CLIENT-ID\n\
         billing         orders          0          7               10              3               -               -               -\n\
         billing         orders          1          4               4               0               -               -               -\n\
         billing         orders          2          0               0               0               -               -               -\n"
    );

    // A dry run (the default) prints the plan and changes nothing.
    let out = reset(
        &broker,
        "billing",
        &["--topic", "orders:0", "--shift-by", "-3"],
    );
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "\n\
         GROUP           TOPIC           PARTITION  NEW-OFFSET\n\
         billing         orders          0          4\n"
    );
    assert!(String::from_utf8(out.stderr).unwrap().contains("--execute"));
    let described = ok(freshet(&broker, &["group", "describe", "billing"]));
    assert!(
        described.contains("billing         orders          0          7 "),
        "{described}"
    );

    // Shifts are kept within [log start, log end].
    let shifted = |by: &str| {
        ok(reset(
            &broker,
            "billing",
            &["--all-topics", "--shift-by", by, "--dry-run"],
        ))
    };
    let new_offsets = |plan: String| -> Vec<String> {
        plan.lines()
            .skip(2)
            .map(|l| l.split_whitespace().last().unwrap().to_owned())
            .collect()
    };
    assert_eq!(new_offsets(shifted("-100")), ["0", "0", "0"]);
    assert_eq!(new_offsets(shifted("2")), ["9", "4", "0"]);
    assert_eq!(new_offsets(shifted("100")), ["10", "4", "0"]);

    // By time: the first record at or after it, else the log end.
    let plan = ok(reset(
        &broker,
        "billing",
        &[
            "--topic",
            "orders",
            "--to-datetime",
            "2026-11-23T10:00:04.500Z",
            "--execute",
        ],
    ));
    assert_eq!(new_offsets(plan), ["5", "4", "0"]);
    let plan = ok(reset(
        &broker,
        "billing",
        &[
            "--topic",
            "orders",
            "--to-datetime",
            "2026-11-23T11:00:02+01:00",
        ],
    ));
    assert_eq!(new_offsets(plan), ["2", "2", "0"]);
    // Records are stamped in 2026-11-23T10:00: a duration back from now reaches before all
    // of them, the committed offsets stay as they are with --to-current.
    let plan = ok(reset(&broker, "billing", &["--all-topics", "--to-current"]));
    assert_eq!(new_offsets(plan), ["5", "4", "0"]);
    let plan = ok(reset(
        &broker,
        "billing",
        &["--all-topics", "--by-duration", "P36500D"],
    ));
    assert_eq!(new_offsets(plan), ["0", "0", "0"]);
    let plan = ok(reset(
        &broker,
        "billing",
        &["--all-topics", "--to-latest", "--execute"],
    ));
    assert_eq!(new_offsets(plan), ["10", "4", "0"]);
    // A second group; --all describes both, in name order.
    ok(reset(
        &broker,
        "audit",
        &["--topic", "orders:1", "--to-offset", "1", "--execute"],
    ));
    let all = ok(freshet(&broker, &["group", "describe", "--all"]));
    let named = ok(freshet(&broker, &["group", "describe", "audit", "billing"]));
    assert_eq!(all, named);
    assert_eq!(
        all,
        "\n\
         Consumer group 'audit' has no active members.\n\
         \n\
         GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID     HOST            CLIENT-ID\n\
         audit           orders          1          1               4               3               -               -               -\n\
         \n\
         Consumer group 'billing' has no active members.\n\
         \n\
         GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID     HOST            CLIENT-ID\n\
         billing         orders          0          10              10              0               -               -               -\n\
         billing         orders          1          4               4               0               -               -               -\n\
         billing         orders          2          0               0               0               -               -               -\n"
    );
    ok(freshet(&broker, &["group", "delete", "-g", "audit"]));

    let described = ok(freshet(&broker, &["group", "describe", "billing"]));
    assert!(
        described.contains(
            "billing         orders          0          10              10              0 "
        ),
        "{described}"
    );

    // Deleting the offsets of some partitions.
    assert_eq!(
        ok(freshet(
            &broker,
            &[
                "group",
                "delete-offsets",
                "-g",
                "billing",
                "--topic",
                "orders:2,0"
            ]
        )),
        "Request succeeded for deleting offsets from group billing.\n\
         \n\
         TOPIC           PARTITION  STATUS\n\
         orders          0          Successful\n\
         orders          2          Successful\n"
    );
    let described = ok(freshet(&broker, &["group", "describe", "billing"]));
    let partitions: Vec<&str> = described
        .lines()
        .skip(4)
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(partitions, ["1"], "{described}");
    assert_eq!(
        failure(freshet(
            &broker,
            &[
                "group",
                "delete-offsets",
                "-g",
                "billing",
                "--topic",
                "gone"
            ]
        )),
        "freshet: topic 'gone' does not exist"
    );

    let listed = ok(freshet(&broker, &["group", "list"]));
    assert_eq!(listed, "billing\n");
    let listed = ok(freshet(&broker, &["group", "list", "--long"]));
    let first = listed.lines().nth(1).unwrap_or_default();
    assert!(
        first.starts_with("billing ") && first.contains(" Empty "),
        "{listed}"
    );
    assert_eq!(
        ok(freshet(&broker, &["group", "list", "--state", "Stable"])),
        ""
    );

    assert_eq!(
        ok(freshet(&broker, &["group", "delete", "--group", "billing"])),
        "Deleted consumer group 'billing'.\n"
    );
    assert_eq!(
        failure(freshet(&broker, &["group", "describe", "billing"])),
        "freshet: consumer group 'billing' does not exist"
    );
    assert_eq!(
        failure(freshet(&broker, &["group", "delete", "--group", "billing"])),
        "freshet: consumer group 'billing' does not exist"
    );
    assert_eq!(ok(freshet(&broker, &["group", "list"])), "");
}

/// One classic member that joined and synced by hand, assigned `partitions` of `orders`.
struct Member {
    client: RawClient,
    member_id: String,
}

fn join(broker: &BrokerProcess, group: &str, partitions: &[i32]) -> Member {
    let mut client = RawClient::connect(broker.addr).unwrap();
    let subscription = ConsumerProtocolSubscription {
        topics: vec!["orders".into()],
        ..Default::default()
    };
    let mut metadata = BytesMut::new();
    metadata.extend_from_slice(&1i16.to_be_bytes());
    subscription.encode(&mut metadata, 1).unwrap();
    let mut member_id = String::new();
    let joined = loop {
        let request = JoinGroupRequest {
            group_id: group.into(),
            session_timeout_ms: 60_000,
            rebalance_timeout_ms: 60_000,
            member_id: member_id.clone(),
            group_instance_id: None,
            protocol_type: "consumer".into(),
            protocols: vec![JoinGroupRequestProtocol {
                name: "range".into(),
                metadata: metadata.clone().freeze(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let Response::JoinGroup(response) = client.call(5, Request::JoinGroup(request)).unwrap()
        else {
            panic!("not a JoinGroup response")
        };
        if response.error_code == 79 {
            member_id = response.member_id;
            continue;
        }
        assert_eq!(response.error_code, 0, "{response:?}");
        break response;
    };
    let mut assignment = BytesMut::new();
    assignment.extend_from_slice(&0i16.to_be_bytes());
    ConsumerProtocolAssignment {
        assigned_partitions: vec![WireTp {
            topic: "orders".into(),
            partitions: partitions.to_vec(),
        }],
        user_data: None,
    }
    .encode(&mut assignment, 0)
    .unwrap();
    let request = SyncGroupRequest {
        group_id: group.into(),
        generation_id: joined.generation_id,
        member_id: joined.member_id.clone(),
        assignments: vec![SyncGroupRequestAssignment {
            member_id: joined.member_id.clone(),
            assignment: assignment.freeze(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let Response::SyncGroup(synced) = client.call(3, Request::SyncGroup(request)).unwrap() else {
        panic!("not a SyncGroup response")
    };
    assert_eq!(synced.error_code, 0, "{synced:?}");
    Member {
        client,
        member_id: joined.member_id,
    }
}

impl Member {
    fn leave(mut self, group: &str) {
        let request = LeaveGroupRequest {
            group_id: group.into(),
            members: vec![MemberIdentity {
                member_id: self.member_id.clone(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let Response::LeaveGroup(left) = self.client.call(3, Request::LeaveGroup(request)).unwrap()
        else {
            panic!("not a LeaveGroup response")
        };
        assert_eq!(left.error_code, 0, "{left:?}");
    }
}

#[test]
fn an_active_group_is_described_and_not_reset() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path());
    orders(&broker);
    ok(reset(
        &broker,
        "live",
        &["--topic", "orders:0", "--to-offset", "6", "--execute"],
    ));
    let member = join(&broker, "live", &[0, 2]);
    // The host as the broker reports it (Kafka: "/127.0.0.1").
    let host = support::runtime().block_on(async {
        let admin = Admin::new(ClientConfig::new(&broker.addr.to_string())).unwrap();
        let described = admin.describe_group("live").await.unwrap();
        described.members[0].host.clone()
    });
    assert!(host.contains("127.0.0.1"), "{host}");

    let owned = |p: &str, current: &str, end: &str, lag: &str| -> Vec<String> {
        [
            "live",
            "orders",
            p,
            current,
            end,
            lag,
            &member.member_id,
            &host,
            "freshet-test",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let expected = table(
        &[
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ],
        &[15, 15, 10, 15, 15, 15, 15, 15, 0],
        &[owned("0", "6", "10", "4"), owned("2", "-", "0", "-")],
    );
    assert_eq!(
        ok(freshet(&broker, &["group", "describe", "live"])),
        format!("\n{expected}")
    );
    let expected = table(
        &[
            "GROUP",
            "CONSUMER-ID",
            "GROUP-INSTANCE-ID",
            "HOST",
            "CLIENT-ID",
            "#PARTITIONS",
            "ASSIGNMENT",
        ],
        &[15, 15, 17, 15, 15, 11, 0],
        &[[
            "live",
            &member.member_id,
            "-",
            &host,
            "freshet-test",
            "2",
            "orders:0,2",
        ]
        .map(str::to_owned)
        .to_vec()],
    );
    assert_eq!(
        ok(freshet(
            &broker,
            &["group", "describe", "live", "--members"]
        )),
        format!("\n{expected}")
    );
    let state = ok(freshet(&broker, &["group", "describe", "live", "--state"]));
    let row = state.lines().nth(2).unwrap_or_default();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells.first(), Some(&"live"), "{state}");
    assert_eq!(
        &cells[cells.len() - 3..],
        ["range", "Stable", "1"],
        "{state}"
    );

    assert_eq!(
        failure(reset(
            &broker,
            "live",
            &["--all-topics", "--to-earliest", "--execute"]
        )),
        "freshet: assignments can only be reset if the group 'live' is inactive, but the \
         current state is Stable"
    );
    assert_eq!(
        failure(freshet(&broker, &["group", "delete", "--group", "live"])),
        "freshet: consumer group 'live' has active members (NON_EMPTY_GROUP)"
    );
    // Nothing moved.
    let described = ok(freshet(&broker, &["group", "describe", "live"]));
    assert!(described.contains(" 6 "), "{described}");

    assert_eq!(
        failure(freshet(
            &broker,
            &[
                "group",
                "delete-offsets",
                "-g",
                "live",
                "--topic",
                "orders:0"
            ]
        )),
        "freshet: consumer group 'live' has members subscribed to the topic: stop them first \
         (GROUP_SUBSCRIBED_TO_TOPIC)"
    );

    member.leave("live");
    let plan = ok(reset(
        &broker,
        "live",
        &["--all-topics", "--to-earliest", "--execute"],
    ));
    assert!(
        plan.ends_with("live            orders          0          0\n"),
        "{plan}"
    );
    assert_eq!(
        ok(freshet(&broker, &["group", "delete", "--group", "live"])),
        "Deleted consumer group 'live'.\n"
    );
}

#[test]
fn bad_inputs_are_one_line_errors() {
    // Checked before connecting: no broker needed, and none is reachable here.
    let unreachable = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_freshet"))
            .args(args)
            .env("FRESHET_BOOTSTRAP", "127.0.0.1:1")
            .output()
            .unwrap()
    };
    let reset = |extra: &[&str]| {
        let mut args = vec!["group", "reset-offsets", "--group", "g"];
        args.extend_from_slice(extra);
        failure(unreachable(&args))
    };
    assert_eq!(
        reset(&["--topic", "t", "--to-datetime", "yesterday"]),
        "freshet: invalid --to-datetime 'yesterday': expected YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM]"
    );
    assert_eq!(
        reset(&["--topic", "t", "--to-datetime", "2026-02-30T00:00:00"]),
        "freshet: invalid --to-datetime '2026-02-30T00:00:00': no such date or time"
    );
    assert_eq!(
        reset(&["--topic", "t", "--to-earliest", "--to-latest"]),
        "freshet: give only one of --to-earliest, --to-latest, --to-offset, --to-datetime, \
         --by-duration, --shift-by, --to-current"
    );
    assert_eq!(
        reset(&["--topic", "t", "--by-duration", "1h"]),
        "freshet: invalid --by-duration '1h': expected PnDTnHnMnS, e.g. PT30M or P1DT12H"
    );
    assert_eq!(
        reset(&["--topic", "t"]),
        "freshet: give where to move the offsets: --to-earliest, --to-latest, --to-offset, \
         --to-datetime, --by-duration, --shift-by or --to-current"
    );
    assert_eq!(
        reset(&["--to-earliest"]),
        "freshet: give the partitions to reset: --topic TOPIC[:P,P] or --all-topics"
    );
    assert_eq!(
        reset(&["--topic", "t", "--all-topics", "--to-earliest"]),
        "freshet: give either --topic or --all-topics, not both"
    );
    assert_eq!(
        reset(&["--topic", "t:one", "--to-earliest"]),
        "freshet: invalid --topic 't:one': 'one' is not a partition number"
    );
    assert_eq!(
        reset(&["--topic", "t", "--to-offset", "-1"]),
        "freshet: --to-offset must not be negative, got -1"
    );

    // Checked against the broker.
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path());
    orders(&broker);
    let reset = |extra: &[&str]| {
        let mut args = vec!["group", "reset-offsets", "--group", "g"];
        args.extend_from_slice(extra);
        failure(freshet(&broker, &args))
    };
    assert_eq!(
        reset(&["--topic", "nope", "--to-earliest"]),
        "freshet: topic 'nope' does not exist"
    );
    assert_eq!(
        reset(&["--topic", "orders:0,5", "--to-earliest"]),
        "freshet: topic 'orders' has no partition 5 (it has 3)"
    );
    assert_eq!(
        reset(&["--topic", "orders:1", "--shift-by", "1"]),
        "freshet: cannot shift the offset of orders-1: the group has no committed offset for it"
    );
    assert_eq!(
        failure(freshet(&broker, &["group", "describe", "g"])),
        "freshet: consumer group 'g' does not exist"
    );
}
