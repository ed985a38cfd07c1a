//! `freshet group list|describe|delete|reset-offsets`: consumer-group administration with the
//! output layout of Kafka's `kafka-consumer-groups`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{bail, Context};
use freshet_client::consumer::OffsetSpec;
use freshet_client::{Admin, Error, GroupDescription, KafkaCode, TopicPartition};

use crate::connect::{block_on, ConnectArgs};
use crate::output::say;

#[derive(clap::Args, Debug)]
pub struct GroupArgs {
    #[command(subcommand)]
    command: GroupCommand,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(clap::Subcommand, Debug)]
enum GroupCommand {
    /// List consumer groups (names; --long adds state and type).
    List {
        /// Only groups in these states (Empty, Stable, PreparingRebalance, ...); repeatable or
        /// comma-separated.
        #[arg(long = "state", value_name = "STATE", value_delimiter = ',')]
        states: Vec<String>,
        /// Only groups of these types (classic, consumer); repeatable or comma-separated.
        #[arg(long = "type", value_name = "TYPE", value_delimiter = ',')]
        types: Vec<String>,
        /// Print GROUP STATE TYPE PROTOCOL-TYPE columns.
        #[arg(long, short = 'l')]
        long: bool,
    },
    /// Show a group's partitions with committed offset, log end offset, lag and owner.
    Describe {
        /// The groups to describe.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        groups: Vec<String>,
        /// Describe every group.
        #[arg(long)]
        all: bool,
        /// Show the members instead: id, instance id, host, client id, assignment.
        #[arg(long, conflicts_with = "state")]
        members: bool,
        /// Show the coordinator, assignment strategy, state and member count instead.
        #[arg(long)]
        state: bool,
    },
    /// Delete groups and their committed offsets (only groups without members).
    Delete {
        /// The group; repeatable.
        #[arg(long = "group", short = 'g', value_name = "GROUP", required = true)]
        groups: Vec<String>,
    },
    /// Move a group's committed offsets (the group must have no members). Prints the plan;
    /// nothing changes without --execute.
    ResetOffsets(ResetArgs),
    /// Delete a group's committed offsets of some partitions (not of topics its members
    /// subscribe to).
    DeleteOffsets {
        /// The consumer group.
        #[arg(long, short = 'g')]
        group: String,
        /// `TOPIC` (every partition) or `TOPIC:P,P,...`; repeatable.
        #[arg(
            long = "topic",
            short = 't',
            value_name = "TOPIC[:P,P]",
            required = true
        )]
        topics: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
struct ResetArgs {
    /// The consumer group.
    #[arg(long, short = 'g')]
    group: String,
    /// `TOPIC` (every partition) or `TOPIC:P,P,...`; repeatable.
    #[arg(long = "topic", short = 't', value_name = "TOPIC[:P,P]")]
    topics: Vec<String>,
    /// Every topic the group has committed offsets for.
    #[arg(long)]
    all_topics: bool,
    /// The log start offset.
    #[arg(long)]
    to_earliest: bool,
    /// The log end offset.
    #[arg(long)]
    to_latest: bool,
    /// This offset (kept within the log start and end offsets).
    #[arg(long, value_name = "OFFSET", allow_negative_numbers = true)]
    to_offset: Option<i64>,
    /// The first offset at or after this time, `YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM]`
    /// (no zone: UTC); the log end offset when there is none.
    #[arg(long, value_name = "DATETIME")]
    to_datetime: Option<String>,
    /// The committed offset moved by N (negative: back), kept within the log.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    shift_by: Option<i64>,
    /// The first offset at or after this long ago, ISO-8601 `PnDTnHnMnS` (e.g. PT1H30M).
    #[arg(long, value_name = "DURATION")]
    by_duration: Option<String>,
    /// The committed offset itself (kept within the log).
    #[arg(long)]
    to_current: bool,
    /// Commit the new offsets (without it this is a dry run).
    #[arg(long, conflicts_with = "dry_run")]
    execute: bool,
    /// Only print the plan (the default).
    #[arg(long)]
    dry_run: bool,
}

/// Where to move each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Earliest,
    Latest,
    Offset(i64),
    Timestamp(i64),
    ShiftBy(i64),
    Current,
}

/// Which partitions to move.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    AllTopics,
    /// Topic and its chosen partitions (empty: all of them).
    Topics(Vec<(String, Vec<i32>)>),
}

pub fn run(args: GroupArgs) -> anyhow::Result<()> {
    // Inputs are checked before any connection is made.
    let reset = match &args.command {
        GroupCommand::ResetOffsets(reset) => Some((scope(reset)?, target(reset)?)),
        _ => None,
    };
    let delete_scope = match &args.command {
        GroupCommand::DeleteOffsets { topics, .. } => Some(Scope::Topics(
            topics
                .iter()
                .map(|spec| parse_topic(spec))
                .collect::<anyhow::Result<Vec<_>>>()?,
        )),
        _ => None,
    };
    let admin = Admin::new(args.connect.client_config())?;
    block_on(async {
        match args.command {
            GroupCommand::List {
                states,
                types,
                long,
            } => list(&admin, &states, &types, long).await,
            GroupCommand::Describe {
                groups,
                all,
                members,
                state,
            } => {
                let groups = if all {
                    admin
                        .list_groups(&[], &[])
                        .await?
                        .into_iter()
                        .map(|g| g.group_id)
                        .collect()
                } else {
                    groups
                };
                for group in &groups {
                    describe(&admin, group, members, state).await?;
                }
                Ok(())
            }
            GroupCommand::Delete { groups } => delete(&admin, &groups).await,
            GroupCommand::ResetOffsets(args) => {
                let (scope, target) = reset.expect("checked above");
                reset_offsets(&admin, &args.group, &scope, target, args.execute).await
            }
            GroupCommand::DeleteOffsets { group, .. } => {
                let scope = delete_scope.expect("checked above");
                delete_offsets(&admin, &group, &scope).await
            }
        }
    })?
}

async fn list(
    admin: &Admin,
    states: &[String],
    types: &[String],
    long: bool,
) -> anyhow::Result<()> {
    let groups = admin.list_groups(states, types).await?;
    if !long {
        for group in &groups {
            say!("{}", group.group_id);
        }
        return Ok(());
    }
    let rows = groups
        .iter()
        .map(|g| {
            vec![
                g.group_id.clone(),
                dash_if_empty(&g.state),
                dash_if_empty(&g.group_type),
                dash_if_empty(&g.protocol_type),
            ]
        })
        .collect();
    print_table(
        &["GROUP", "STATE", "TYPE", "PROTOCOL-TYPE"],
        &[15, 20, 10, 0],
        rows,
    );
    Ok(())
}

async fn describe(admin: &Admin, group: &str, members: bool, state: bool) -> anyhow::Result<()> {
    let description = describe_existing(admin, group).await?;
    if state {
        let c = &description.coordinator;
        let row = vec![
            group.to_owned(),
            format!("{}:{}  ({})", c.host, c.port, c.node_id),
            dash_if_empty(&description.protocol),
            description.state.clone(),
            description.members.len().to_string(),
        ];
        say!("");
        print_table(
            &[
                "GROUP",
                "COORDINATOR (ID)",
                "ASSIGNMENT-STRATEGY",
                "STATE",
                "#MEMBERS",
            ],
            &[15, 25, 20, 20, 0],
            vec![row],
        );
        return Ok(());
    }
    say!("");
    state_notice(&description);
    if members {
        let mut listed: Vec<_> = description.members.iter().collect();
        listed.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        let rows = listed
            .into_iter()
            .map(|m| {
                vec![
                    group.to_owned(),
                    m.member_id.clone(),
                    m.group_instance_id.clone().unwrap_or_else(|| "-".into()),
                    m.host.clone(),
                    m.client_id.clone(),
                    m.assignment.len().to_string(),
                    assignment_text(&m.assignment),
                ]
            })
            .collect();
        print_table(
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
            rows,
        );
        return Ok(());
    }
    print_table(
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
        offset_rows(admin, &description).await?,
    );
    Ok(())
}

/// One row per partition the group has a committed offset for or a member owns.
async fn offset_rows(
    admin: &Admin,
    description: &GroupDescription,
) -> anyhow::Result<Vec<Vec<String>>> {
    let group = description.group_id.as_str();
    let committed = admin.list_group_offsets(group, None).await?;
    let mut owners: BTreeMap<TopicPartition, (String, String, String)> = BTreeMap::new();
    for member in &description.members {
        for tp in &member.assignment {
            owners.insert(
                tp.clone(),
                (
                    member.member_id.clone(),
                    member.host.clone(),
                    member.client_id.clone(),
                ),
            );
        }
    }
    let partitions: BTreeSet<TopicPartition> =
        committed.keys().chain(owners.keys()).cloned().collect();
    let ends = log_end_offsets(admin, &partitions).await;
    Ok(partitions
        .iter()
        .map(|tp| {
            let current = committed.get(tp).map(|c| c.offset);
            let end = ends.get(tp).copied();
            // As Kafka: negative when the commit is past the end (a truncated log).
            let lag = match (current, end) {
                (Some(current), Some(end)) => Some(end - current),
                _ => None,
            };
            let (member, host, client) = owners
                .get(tp)
                .cloned()
                .unwrap_or_else(|| ("-".into(), "-".into(), "-".into()));
            vec![
                group.to_owned(),
                tp.topic.clone(),
                tp.partition.to_string(),
                or_dash(current),
                or_dash(end),
                or_dash(lag),
                member,
                host,
                client,
            ]
        })
        .collect())
}

/// Log end offsets, topic by topic so that a deleted topic only loses its own column.
async fn log_end_offsets(
    admin: &Admin,
    partitions: &BTreeSet<TopicPartition>,
) -> HashMap<TopicPartition, i64> {
    let all: Vec<TopicPartition> = partitions.iter().cloned().collect();
    if let Ok(ends) = admin.list_offsets(&all, OffsetSpec::Latest).await {
        return ends;
    }
    let mut by_topic: BTreeMap<&str, Vec<TopicPartition>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.clone());
    }
    let mut ends = HashMap::new();
    for tps in by_topic.values() {
        if let Ok(found) = admin.list_offsets(tps, OffsetSpec::Latest).await {
            ends.extend(found);
        }
    }
    ends
}

/// Kafka's notes above the table: an empty group, a rebalancing one.
fn state_notice(description: &GroupDescription) {
    let group = &description.group_id;
    match description.state.as_str() {
        "Empty" => {
            say!("Consumer group '{group}' has no active members.");
            say!("");
        }
        "PreparingRebalance" | "CompletingRebalance" | "Assigning" | "Reconciling" => {
            say!("Warning: Consumer group '{group}' is rebalancing.");
            say!("");
        }
        _ => {}
    }
}

async fn delete(admin: &Admin, groups: &[String]) -> anyhow::Result<()> {
    for group in groups {
        admin
            .delete_groups(std::slice::from_ref(group))
            .await
            .map_err(|error| group_error(group, error))?;
        say!("Deleted consumer group '{group}'.");
    }
    Ok(())
}

async fn delete_offsets(admin: &Admin, group: &str, scope: &Scope) -> anyhow::Result<()> {
    let partitions = reset_partitions(admin, scope, &BTreeMap::new()).await?;
    admin
        .delete_group_offsets(group, &partitions)
        .await
        .map_err(|error| group_error(group, error))?;
    say!("Request succeeded for deleting offsets from group {group}.");
    say!("");
    let rows = partitions
        .iter()
        .map(|tp| {
            vec![
                tp.topic.clone(),
                tp.partition.to_string(),
                "Successful".to_owned(),
            ]
        })
        .collect();
    print_table(&["TOPIC", "PARTITION", "STATUS"], &[15, 10, 0], rows);
    Ok(())
}

async fn reset_offsets(
    admin: &Admin,
    group: &str,
    scope: &Scope,
    target: Target,
    execute: bool,
) -> anyhow::Result<()> {
    match admin.describe_group(group).await {
        Ok(description) if !description.is_inactive() => bail!(
            "assignments can only be reset if the group '{group}' is inactive, but the \
             current state is {}",
            description.state
        ),
        Ok(_) => {}
        // Resetting a group that does not exist yet creates it, as Kafka allows.
        Err(error) if error.kafka_code() == Some(GROUP_ID_NOT_FOUND) => {}
        Err(error) => return Err(error.into()),
    }
    let committed = admin.list_group_offsets(group, None).await?;
    let partitions = reset_partitions(admin, scope, &committed).await?;
    let plan = plan(admin, &partitions, target, &committed).await?;
    let rows = plan
        .iter()
        .map(|(tp, offset)| {
            vec![
                group.to_owned(),
                tp.topic.clone(),
                tp.partition.to_string(),
                offset.to_string(),
            ]
        })
        .collect();
    if execute {
        admin
            .alter_group_offsets(group, &plan)
            .await
            .map_err(|error| group_error(group, error))?;
    }
    say!("");
    print_table(
        &["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"],
        &[15, 15, 10, 0],
        rows,
    );
    if !execute {
        eprintln!("Dry run: nothing was committed; add --execute to commit these offsets.");
    }
    Ok(())
}

/// The partitions a reset covers, sorted.
async fn reset_partitions(
    admin: &Admin,
    scope: &Scope,
    committed: &BTreeMap<TopicPartition, freshet_client::CommittedOffset>,
) -> anyhow::Result<Vec<TopicPartition>> {
    let topics = match scope {
        Scope::AllTopics => return Ok(committed.keys().cloned().collect()),
        Scope::Topics(topics) => topics,
    };
    let mut partitions = BTreeSet::new();
    for (topic, chosen) in topics {
        let described = admin
            .describe_topics(std::slice::from_ref(topic))
            .await
            .map_err(|error| match error.kafka_code() {
                Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION) => {
                    anyhow::anyhow!("topic '{topic}' does not exist")
                }
                _ => error.into(),
            })?;
        let existing: BTreeSet<i32> = described
            .iter()
            .filter(|d| &d.name == topic)
            .flat_map(|d| d.partitions.iter().map(|p| p.partition))
            .collect();
        if existing.is_empty() {
            bail!("topic '{topic}' does not exist");
        }
        if chosen.is_empty() {
            partitions.extend(existing.iter().map(|&p| TopicPartition::new(topic, p)));
            continue;
        }
        for &partition in chosen {
            if !existing.contains(&partition) {
                bail!(
                    "topic '{topic}' has no partition {partition} (it has {})",
                    existing.len()
                );
            }
            partitions.insert(TopicPartition::new(topic, partition));
        }
    }
    Ok(partitions.into_iter().collect())
}

/// The new offset of each partition, kept within [log start, log end].
async fn plan(
    admin: &Admin,
    partitions: &[TopicPartition],
    target: Target,
    committed: &BTreeMap<TopicPartition, freshet_client::CommittedOffset>,
) -> anyhow::Result<BTreeMap<TopicPartition, i64>> {
    if partitions.is_empty() {
        return Ok(BTreeMap::new());
    }
    let starts = admin.list_offsets(partitions, OffsetSpec::Earliest).await?;
    let ends = admin.list_offsets(partitions, OffsetSpec::Latest).await?;
    let at_time = match target {
        Target::Timestamp(ms) => Some(
            admin
                .list_offsets(partitions, OffsetSpec::Timestamp(ms))
                .await?,
        ),
        _ => None,
    };
    let mut plan = BTreeMap::new();
    for tp in partitions {
        let (start, end) = match (starts.get(tp), ends.get(tp)) {
            (Some(&start), Some(&end)) => (start, end),
            _ => bail!("no log offsets for {tp}"),
        };
        let wanted = match target {
            Target::Earliest => start,
            Target::Latest => end,
            Target::Offset(offset) => offset,
            Target::Timestamp(_) => at_time
                .as_ref()
                .and_then(|found| found.get(tp).copied())
                .unwrap_or(end),
            Target::ShiftBy(delta) => match committed.get(tp) {
                Some(current) => current.offset.saturating_add(delta),
                None => bail!(
                    "cannot shift the offset of {tp}: the group has no committed offset for it"
                ),
            },
            Target::Current => match committed.get(tp) {
                Some(current) => current.offset,
                None => bail!("{tp} has no committed offset to keep"),
            },
        };
        plan.insert(tp.clone(), wanted.clamp(start, end.max(start)));
    }
    Ok(plan)
}

const GROUP_ID_NOT_FOUND: KafkaCode = KafkaCode(69);
const NON_EMPTY_GROUP: KafkaCode = KafkaCode(68);
const UNKNOWN_MEMBER_ID: KafkaCode = KafkaCode(25);
const ILLEGAL_GENERATION: KafkaCode = KafkaCode(22);
const GROUP_SUBSCRIBED_TO_TOPIC: KafkaCode = KafkaCode(86);

async fn describe_existing(admin: &Admin, group: &str) -> anyhow::Result<GroupDescription> {
    admin
        .describe_group(group)
        .await
        .map_err(|error| group_error(group, error))
}

/// Clearer words for the errors a group command meets most.
fn group_error(group: &str, error: Error) -> anyhow::Error {
    match error.kafka_code() {
        Some(GROUP_ID_NOT_FOUND) => anyhow::anyhow!("consumer group '{group}' does not exist"),
        Some(GROUP_SUBSCRIBED_TO_TOPIC) => anyhow::anyhow!(
            "consumer group '{group}' has members subscribed to the topic: stop them first \
             (GROUP_SUBSCRIBED_TO_TOPIC)"
        ),
        Some(NON_EMPTY_GROUP) => {
            anyhow::anyhow!("consumer group '{group}' has active members (NON_EMPTY_GROUP)")
        }
        Some(code @ (UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION)) => anyhow::anyhow!(
            "consumer group '{group}' has active members: offsets can only be changed while it \
             has none ({})",
            code.name().unwrap_or("?")
        ),
        _ => error.into(),
    }
}

fn scope(args: &ResetArgs) -> anyhow::Result<Scope> {
    match (args.all_topics, args.topics.is_empty()) {
        (true, false) => bail!("give either --topic or --all-topics, not both"),
        (false, true) => bail!("give the partitions to reset: --topic TOPIC[:P,P] or --all-topics"),
        (true, true) => Ok(Scope::AllTopics),
        (false, false) => args
            .topics
            .iter()
            .map(|spec| parse_topic(spec))
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Scope::Topics),
    }
}

/// `TOPIC` or `TOPIC:P,P,...`.
fn parse_topic(spec: &str) -> anyhow::Result<(String, Vec<i32>)> {
    let (topic, partitions) = match spec.split_once(':') {
        None => (spec, None),
        Some((topic, partitions)) => (topic, Some(partitions)),
    };
    if topic.is_empty() {
        bail!("invalid --topic '{spec}': empty topic name");
    }
    let Some(partitions) = partitions else {
        return Ok((topic.to_owned(), Vec::new()));
    };
    let mut parsed = Vec::new();
    for part in partitions.split(',') {
        let partition: i32 = part
            .trim()
            .parse()
            .ok()
            .filter(|p| *p >= 0)
            .with_context(|| {
                format!("invalid --topic '{spec}': '{part}' is not a partition number")
            })?;
        if !parsed.contains(&partition) {
            parsed.push(partition);
        }
    }
    Ok((topic.to_owned(), parsed))
}

fn target(args: &ResetArgs) -> anyhow::Result<Target> {
    let mut targets = Vec::new();
    if args.to_earliest {
        targets.push(Target::Earliest);
    }
    if args.to_latest {
        targets.push(Target::Latest);
    }
    if let Some(offset) = args.to_offset {
        if offset < 0 {
            bail!("--to-offset must not be negative, got {offset}");
        }
        targets.push(Target::Offset(offset));
    }
    if let Some(text) = &args.to_datetime {
        let ms = parse_datetime(text).with_context(|| format!("invalid --to-datetime '{text}'"))?;
        targets.push(Target::Timestamp(ms.max(0)));
    }
    if let Some(delta) = args.shift_by {
        targets.push(Target::ShiftBy(delta));
    }
    if let Some(text) = &args.by_duration {
        let ms = parse_duration(text).with_context(|| format!("invalid --by-duration '{text}'"))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        // Before the epoch: every record is later (negative timestamps are ListOffsets codes).
        targets.push(Target::Timestamp(now.saturating_sub(ms).max(0)));
    }
    if args.to_current {
        targets.push(Target::Current);
    }
    match targets.as_slice() {
        [one] => Ok(*one),
        [] => bail!(
            "give where to move the offsets: --to-earliest, --to-latest, --to-offset, \
             --to-datetime, --by-duration, --shift-by or --to-current"
        ),
        _ => bail!(
            "give only one of --to-earliest, --to-latest, --to-offset, --to-datetime, \
             --by-duration, --shift-by, --to-current"
        ),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction][Z|+HH:MM|-HH:MM|+HHMM]` to milliseconds since the epoch;
/// no zone means UTC.
fn parse_datetime(text: &str) -> anyhow::Result<i64> {
    let expected = "expected YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM]";
    let (date, time) = text.split_once('T').context(expected)?;
    let date_parts: Vec<&str> = date.split('-').collect();
    let [year, month, day] = date_parts.as_slice() else {
        bail!(expected)
    };
    if year.len() != 4 || month.len() != 2 || day.len() != 2 {
        bail!(expected);
    }
    let (year, month, day) = (number(year)?, number(month)?, number(day)?);
    // Split the zone off the time.
    let (clock, zone_minutes) = if let Some(clock) = time.strip_suffix('Z') {
        (clock, 0)
    } else if let Some(at) = time.rfind(['+', '-']) {
        let (clock, zone) = time.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 || zone[1..].len() > 5 {
            bail!("bad time zone '{zone}': {expected}");
        }
        let hours = number(&digits[..2])?;
        let minutes = number(&digits[2..])?;
        if hours > 23 || minutes > 59 {
            bail!("bad time zone '{zone}'");
        }
        (clock, sign * (hours * 60 + minutes))
    } else {
        (time, 0)
    };
    let (hms, fraction) = match clock.split_once('.') {
        Some((hms, fraction)) => (hms, Some(fraction)),
        None => (clock, None),
    };
    let hms_parts: Vec<&str> = hms.split(':').collect();
    let [hour, minute, second] = hms_parts.as_slice() else {
        bail!(expected)
    };
    if hour.len() != 2 || minute.len() != 2 || second.len() != 2 {
        bail!(expected);
    }
    let (hour, minute, second) = (number(hour)?, number(minute)?, number(second)?);
    let millis = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            // Milliseconds: the first three digits, padded.
            let padded = format!("{f:0<3}");
            number(&padded[..3])?
        }
        Some(_) => bail!(expected),
    };
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        bail!("no such date or time");
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - zone_minutes * 60;
    Ok(seconds * 1_000 + millis)
}

/// ISO-8601 `PnDTnHnMnS` (each part optional, at least one) to milliseconds.
fn parse_duration(text: &str) -> anyhow::Result<i64> {
    let expected = "expected PnDTnHnMnS, e.g. PT30M or P1DT12H";
    let rest = text.strip_prefix('P').context(expected)?;
    let (days, time) = match rest.split_once('T') {
        Some((days, time)) => {
            if time.is_empty() {
                bail!(expected);
            }
            (days, time)
        }
        None => (rest, ""),
    };
    let mut total: i64 = 0;
    let mut parts = 0;
    if !days.is_empty() {
        let count = days.strip_suffix('D').context(expected)?;
        total = number(count)?.saturating_mul(86_400_000);
        parts += 1;
    }
    let mut digits = String::new();
    let mut last_unit = 0;
    for c in time.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let (rank, unit_ms) = match c {
            'H' => (1, 3_600_000),
            'M' => (2, 60_000),
            'S' => (3, 1_000),
            _ => bail!(expected),
        };
        if rank <= last_unit || digits.is_empty() {
            bail!(expected);
        }
        last_unit = rank;
        total = total.saturating_add(number(&digits)?.saturating_mul(unit_ms));
        digits.clear();
        parts += 1;
    }
    if !digits.is_empty() || parts == 0 {
        bail!(expected);
    }
    Ok(total)
}

fn number(digits: &str) -> anyhow::Result<i64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        bail!("'{digits}' is not a number");
    }
    Ok(digits.parse()?)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let mut days = 0;
    if year >= 1970 {
        for y in 1970..year {
            days += if is_leap(y) { 366 } else { 365 };
        }
    } else {
        for y in year..1970 {
            days -= if is_leap(y) { 366 } else { 365 };
        }
    }
    for m in 1..month {
        days += days_in_month(year, m);
    }
    days + day - 1
}

/// `topic:0,1;other:2`, topics in order.
fn assignment_text(assignment: &[TopicPartition]) -> String {
    if assignment.is_empty() {
        return "-".into();
    }
    let mut by_topic: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for tp in assignment {
        by_topic
            .entry(&tp.topic)
            .or_default()
            .push(tp.partition.to_string());
    }
    by_topic
        .into_iter()
        .map(|(topic, partitions)| format!("{topic}:{}", partitions.join(",")))
        .collect::<Vec<_>>()
        .join(";")
}

fn or_dash(value: Option<i64>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}

fn dash_if_empty(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.to_owned()
    }
}

/// Columns left-aligned, each at least its minimum width and as wide as its widest cell,
/// separated by one space, as `kafka-consumer-groups` prints them (trailing spaces cut).
fn format_table(header: &[&str], min_widths: &[usize], rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = header
        .iter()
        .zip(min_widths)
        .map(|(h, &min)| h.len().max(min))
        .collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                text.push(' ');
            }
            text.push_str(cell);
            let pad = widths[i].saturating_sub(cell.chars().count());
            text.extend(std::iter::repeat_n(' ', pad));
        }
        text.trim_end().to_owned()
    };
    let mut lines = vec![line(header.to_vec())];
    for row in rows {
        lines.push(line(row.iter().map(String::as_str).collect()));
    }
    lines
}

fn print_table(header: &[&str], min_widths: &[usize], rows: Vec<Vec<String>>) {
    for line in format_table(header, min_widths, &rows) {
        say!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_with_and_without_partitions() {
        assert_eq!(parse_topic("t").unwrap(), ("t".into(), vec![]));
        assert_eq!(parse_topic("t:2,0,2").unwrap(), ("t".into(), vec![2, 0]));
        for bad in [":1", "t:", "t:x", "t:1,,2", "t:-1"] {
            assert!(parse_topic(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_topic("t:x").unwrap_err().to_string(),
            "invalid --topic 't:x': 'x' is not a partition number"
        );
    }

    #[test]
    fn datetimes_parse_in_utc_or_their_zone() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00").unwrap(), 0);
        assert_eq!(parse_datetime("1970-01-01T00:00:00.000Z").unwrap(), 0);
        // 2026-11-23T10:00:00Z: 20780 days after the epoch (`date -u -d ... +%s`).
        let base = 20_780 * 86_400_000 + 10 * 3_600_000;
        assert_eq!(parse_datetime("2026-11-23T10:00:00").unwrap(), base);
        assert_eq!(
            parse_datetime("2026-11-23T10:00:00.5Z").unwrap(),
            base + 500
        );
        assert_eq!(
            parse_datetime("2026-11-23T10:00:00.123456").unwrap(),
            base + 123
        );
        assert_eq!(parse_datetime("2026-11-23T11:30:00+01:30").unwrap(), base);
        assert_eq!(parse_datetime("2026-11-23T08:00:00-0200").unwrap(), base);
        assert_eq!(
            parse_datetime("2024-02-29T00:00:00Z").unwrap(),
            1_709_164_800_000
        );
        assert_eq!(parse_datetime("1969-12-31T23:59:59.999Z").unwrap(), -1);
        for bad in [
            "2026-11-23",
            "2026-11-23 10:00:00",
            "2026-13-01T00:00:00",
            "2023-02-29T00:00:00",
            "2026-11-23T24:00:00",
            "2026-11-23T10:00",
            "2026-11-23T10:00:00.",
            "2026-11-23T10:00:00+1",
            "26-11-23T10:00:00",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("PT1H30M").unwrap(), 5_400_000);
        assert_eq!(parse_duration("P1DT2S").unwrap(), 86_402_000);
        assert_eq!(parse_duration("P2D").unwrap(), 172_800_000);
        assert_eq!(parse_duration("PT0S").unwrap(), 0);
        for bad in [
            "", "P", "PT", "1H", "PT1M1H", "PT1X", "PT5", "P1H", "PTH", "P1DT",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tables_pad_like_kafka() {
        let rows = vec![
            vec!["g".into(), "t".into(), "0".into(), "5".into()],
            vec![
                "a-rather-long-group-name".into(),
                "t".into(),
                "12".into(),
                "7".into(),
            ],
        ];
        assert_eq!(
            format_table(
                &["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"],
                &[15, 15, 10, 0],
                &rows
            ),
            vec![
                "GROUP                    TOPIC           PARTITION  NEW-OFFSET",
                "g                        t               0          5",
                "a-rather-long-group-name t               12         7",
            ]
        );
    }

    #[test]
    fn assignments_print_per_topic() {
        let tps = vec![
            TopicPartition::new("b", 1),
            TopicPartition::new("a", 0),
            TopicPartition::new("b", 3),
        ];
        assert_eq!(assignment_text(&tps), "a:0;b:1,3");
        assert_eq!(assignment_text(&[]), "-");
    }
}
