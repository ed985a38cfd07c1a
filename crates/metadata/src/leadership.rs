//! Controller decisions about partition leadership and in-sync replicas, for the replicated
//! cluster: a leader reporting a new ISR (Kafka's AlterPartition, KIP-497), and moving
//! leadership off a broker that left. Pure, like the rest of the controller.

use crate::error::kafka_code;
use crate::image::{MetadataImage, PartitionState};
use crate::record::{MetadataRecord, PartitionChange, TopicId};

/// Why a partition change is refused. Codes are Kafka's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartitionError {
    #[error("no such partition")]
    UnknownTopicOrPartition,
    #[error("broker {0} is not the partition leader")]
    NotLeader(i32),
    #[error("leader epoch {requested} is not the current {current}")]
    FencedLeaderEpoch { requested: i32, current: i32 },
    #[error("partition epoch {requested} is not the current {current}")]
    InvalidUpdateVersion { requested: i32, current: i32 },
    #[error("replica {0} cannot be in sync: not a replica of the partition")]
    IneligibleReplica(i32),
    #[error("the new ISR must hold the leader")]
    LeaderNotInIsr,
}

impl PartitionError {
    pub fn error_code(&self) -> i16 {
        match self {
            PartitionError::UnknownTopicOrPartition => kafka_code::UNKNOWN_TOPIC_OR_PARTITION,
            PartitionError::NotLeader(_) => kafka_code::NOT_LEADER_OR_FOLLOWER,
            PartitionError::FencedLeaderEpoch { .. } => kafka_code::FENCED_LEADER_EPOCH,
            PartitionError::InvalidUpdateVersion { .. } => kafka_code::INVALID_UPDATE_VERSION,
            PartitionError::IneligibleReplica(_) | PartitionError::LeaderNotInIsr => {
                kafka_code::INELIGIBLE_REPLICA
            }
        }
    }
}

/// A leader's request to change its partition's ISR (AlterPartition).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterIsr {
    pub topic_id: TopicId,
    pub partition: i32,
    /// The broker asking; must be the current leader.
    pub leader: i32,
    /// The leader epoch and partition epoch the leader based its request on.
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<i32>,
}

/// The record that applies an AlterPartition, after Kafka's checks: the requester leads in
/// the stated leader epoch, the partition epoch is current (no lost update), and the new ISR
/// holds the leader and only replicas.
pub fn alter_isr(
    image: &MetadataImage,
    request: &AlterIsr,
) -> Result<Vec<MetadataRecord>, PartitionError> {
    let state = partition_state(image, request.topic_id, request.partition)?;
    if request.leader_epoch != state.leader_epoch {
        return Err(PartitionError::FencedLeaderEpoch {
            requested: request.leader_epoch,
            current: state.leader_epoch,
        });
    }
    if request.leader != state.leader {
        return Err(PartitionError::NotLeader(request.leader));
    }
    if request.partition_epoch != state.partition_epoch {
        return Err(PartitionError::InvalidUpdateVersion {
            requested: request.partition_epoch,
            current: state.partition_epoch,
        });
    }
    if let Some(r) = request.new_isr.iter().find(|r| !state.replicas.contains(r)) {
        return Err(PartitionError::IneligibleReplica(*r));
    }
    if !request.new_isr.contains(&state.leader) {
        return Err(PartitionError::LeaderNotInIsr);
    }
    Ok(vec![MetadataRecord::PartitionChange(PartitionChange {
        topic_id: request.topic_id,
        partition: request.partition,
        leader: None,
        isr: Some(request.new_isr.clone()),
        replicas: None,
    })])
}

/// Records that take broker `gone` out of every ISR and move leadership of the partitions it
/// led to the first other in-sync replica in preference order. A partition whose only in-sync
/// replica was `gone` keeps it in the ISR and becomes leaderless (-1): electing an
/// out-of-sync replica would lose acknowledged data (no unclean election).
pub fn fence_broker(image: &MetadataImage, gone: i32) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for topic in image.topics() {
        for (index, state) in topic.partitions.iter().enumerate() {
            if !state.isr.contains(&gone) {
                continue;
            }
            let partition = i32::try_from(index).expect("partition count fits i32");
            let isr: Vec<i32> = state.isr.iter().copied().filter(|r| *r != gone).collect();
            if isr.is_empty() && state.leader == -1 {
                continue; // Already leaderless with `gone` as its last in-sync replica.
            }
            let change = if isr.is_empty() {
                PartitionChange {
                    topic_id: topic.topic_id,
                    partition,
                    leader: Some(-1),
                    isr: None,
                    replicas: None,
                }
            } else {
                let leader = if state.leader == gone {
                    Some(preferred_in_isr(state, &isr))
                } else {
                    None
                };
                PartitionChange {
                    topic_id: topic.topic_id,
                    partition,
                    leader,
                    isr: Some(isr),
                    replicas: None,
                }
            };
            records.push(MetadataRecord::PartitionChange(change));
        }
    }
    records
}

/// Records that give leadership back to each partition's preferred replica (the first one)
/// where it is in sync and not already leading (Kafka's preferred leader election).
pub fn elect_preferred_leaders(image: &MetadataImage) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for topic in image.topics() {
        for (index, state) in topic.partitions.iter().enumerate() {
            let Some(&preferred) = state.replicas.first() else {
                continue;
            };
            if state.leader != preferred && state.isr.contains(&preferred) {
                records.push(MetadataRecord::PartitionChange(PartitionChange {
                    topic_id: topic.topic_id,
                    partition: i32::try_from(index).expect("partition count fits i32"),
                    leader: Some(preferred),
                    isr: None,
                    replicas: None,
                }));
            }
        }
    }
    records
}

fn partition_state(
    image: &MetadataImage,
    topic_id: TopicId,
    partition: i32,
) -> Result<&PartitionState, PartitionError> {
    let topic = image
        .topic_by_id(topic_id)
        .ok_or(PartitionError::UnknownTopicOrPartition)?;
    usize::try_from(partition)
        .ok()
        .and_then(|i| topic.partitions.get(i))
        .ok_or(PartitionError::UnknownTopicOrPartition)
}

/// The first replica, in preference order, that is in `isr` (non-empty by the caller).
fn preferred_in_isr(state: &PartitionState, isr: &[i32]) -> i32 {
    state
        .replicas
        .iter()
        .copied()
        .find(|r| isr.contains(r))
        .expect("the ISR is a non-empty subset of the replicas")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{self, create_topic, ControllerSettings, NewTopic};

    const T: TopicId = TopicId([7; 16]);

    /// Brokers 1-3, topic "t" with 3 partitions of 3 replicas: p0 [1,2,3], p1 [2,3,1],
    /// p2 [3,1,2].
    fn cluster() -> MetadataImage {
        let mut image = MetadataImage::new();
        for id in 1..=3 {
            image
                .apply_batch(&controller::register_broker(&image, id, "h", 1, None))
                .unwrap();
        }
        let request = NewTopic {
            name: "t".into(),
            num_partitions: Some(3),
            replication_factor: Some(3),
            configs: vec![],
        };
        let records = create_topic(&image, &request, T, &ControllerSettings::default()).unwrap();
        image.apply_batch(&records).unwrap();
        image
    }

    fn change(partition: i32, leader: Option<i32>, isr: Option<Vec<i32>>) -> MetadataRecord {
        MetadataRecord::PartitionChange(PartitionChange {
            topic_id: T,
            partition,
            leader,
            isr,
            replicas: None,
        })
    }

    fn shrink(leader_epoch: i32, partition_epoch: i32, new_isr: Vec<i32>) -> AlterIsr {
        AlterIsr {
            topic_id: T,
            partition: 0,
            leader: 1,
            leader_epoch,
            partition_epoch,
            new_isr,
        }
    }

    #[test]
    fn alter_isr_checks_epochs_and_membership() {
        let mut image = cluster();
        let records = alter_isr(&image, &shrink(0, 0, vec![1, 2])).unwrap();
        assert_eq!(records, vec![change(0, None, Some(vec![1, 2]))]);
        image.apply_batch(&records).unwrap();
        // The same request again is a lost update now: the partition epoch moved on.
        assert_eq!(
            alter_isr(&image, &shrink(0, 0, vec![1])),
            Err(PartitionError::InvalidUpdateVersion {
                requested: 0,
                current: 1
            })
        );
        assert_eq!(
            alter_isr(&image, &shrink(3, 1, vec![1]))
                .unwrap_err()
                .error_code(),
            74
        );
        assert_eq!(
            alter_isr(&image, &shrink(0, 1, vec![1, 9])),
            Err(PartitionError::IneligibleReplica(9))
        );
        assert_eq!(
            alter_isr(&image, &shrink(0, 1, vec![2])),
            Err(PartitionError::LeaderNotInIsr)
        );
        let mut not_leader = shrink(0, 1, vec![2]);
        not_leader.leader = 2;
        assert_eq!(alter_isr(&image, &not_leader).unwrap_err().error_code(), 6);
        let mut unknown = shrink(0, 1, vec![1]);
        unknown.partition = 5;
        assert_eq!(alter_isr(&image, &unknown).unwrap_err().error_code(), 3);
    }

    #[test]
    fn fencing_a_broker_moves_leadership_within_the_isr() {
        let mut image = cluster();
        let records = fence_broker(&image, 1);
        assert_eq!(
            records,
            vec![
                change(0, Some(2), Some(vec![2, 3])),
                change(1, None, Some(vec![2, 3])),
                change(2, None, Some(vec![3, 2])),
            ]
        );
        image.apply_batch(&records).unwrap();
        let p0 = image.partition("t", 0).unwrap();
        assert_eq!((p0.leader, p0.leader_epoch), (2, 1));
        // Broker 1 is back in sync on p0: the preferred leader election returns it.
        image
            .apply_batch(&[change(0, None, Some(vec![2, 3, 1]))])
            .unwrap();
        let records = elect_preferred_leaders(&image);
        assert_eq!(records, vec![change(0, Some(1), None)]);
        image.apply_batch(&records).unwrap();
        assert_eq!(image.partition("t", 0).unwrap().leader_epoch, 2);
        assert!(elect_preferred_leaders(&image).is_empty());
    }

    #[test]
    fn the_last_in_sync_replica_leaving_makes_the_partition_leaderless() {
        let mut image = cluster();
        image
            .apply_batch(&[change(0, None, Some(vec![1]))])
            .unwrap();
        let records = fence_broker(&image, 1);
        assert_eq!(records[0], change(0, Some(-1), None));
        image.apply_batch(&records).unwrap();
        let p0 = image.partition("t", 0).unwrap();
        assert_eq!((p0.leader, p0.isr.clone()), (-1, vec![1]));
        // Fencing again changes nothing: every partition was already handled.
        assert!(fence_broker(&image, 1).is_empty());
    }
}
