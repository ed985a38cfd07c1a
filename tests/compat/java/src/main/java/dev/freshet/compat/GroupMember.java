package dev.freshet.compat;

import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.consumer.RoundRobinAssignor;
import org.apache.kafka.clients.consumer.StickyAssignor;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * One consumer-group member for tests/compat/group-churn.py.
 *
 * <p>{@code GroupMember [--bootstrap HOST:PORT] [--protocol classic|consumer] [--delay-ms MS]
 * [--assignor range|roundrobin|sticky|cooperative-sticky] [--remote-assignor uniform|range]
 * [--instance-id ID] GROUP TOPIC}: prints {@code PARTITION OFFSET VALUE} for every record, commits each poll batch
 * synchronously (printing {@code committing} before) and then prints {@code committed PARTITION
 * NEXT_OFFSET} per partition (or {@code
 * commit-failed ...}; a failed commit's offsets are committed again with the next batch, or on the
 * next poll if it brings none, as long as the member keeps the partition). SIGTERM: the batch in hand is finished and committed, the consumer is closed
 * (leaving the group, unless the member is static) and {@code closed} is printed.
 *
 * <p>{@code --assignor}: the classic protocol's {@code partition.assignment.strategy}, that one
 * assignor only (default: the client's list, range then cooperative-sticky). {@code
 * --remote-assignor}: KIP-848's {@code group.remote.assignor} (default: the broker's). {@code
 * --instance-id}: {@code group.instance.id} (static membership, KIP-345; classic protocol). Partition
 * assignment changes are printed as {@code assigned [P,...]}, {@code revoked [...]} and {@code lost
 * [...]}.
 */
public final class GroupMember {
  private static volatile boolean stop = false;
  private static final java.util.Comparator<TopicPartition> BY_PARTITION =
      (a, b) -> Integer.compare(a.partition(), b.partition());

  public static void main(String[] args) throws Exception {
    String bootstrap = System.getenv().getOrDefault("BOOTSTRAP", "127.0.0.1:9092");
    String protocol = "classic";
    long delayMs = 0;
    String assignor = null;
    String remoteAssignor = null;
    String instanceId = null;
    List<String> rest = new java.util.ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--bootstrap" -> bootstrap = args[++i];
        case "--protocol" -> protocol = args[++i];
        case "--delay-ms" -> delayMs = Long.parseLong(args[++i]);
        case "--assignor" -> assignor = args[++i];
        case "--remote-assignor" -> remoteAssignor = args[++i];
        case "--instance-id" -> instanceId = args[++i];
        default -> rest.add(args[i]);
      }
    }
    if (rest.size() != 2) {
      System.err.println(
          "usage: GroupMember [--bootstrap H:P] [--protocol P] [--delay-ms MS] [--assignor A]"
              + " [--remote-assignor A] [--instance-id ID] GROUP TOPIC");
      System.exit(2);
    }
    String group = rest.get(0);
    String topic = rest.get(1);

    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "50");
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
    if (protocol.equals("classic")) {
      props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
      props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
    }
    if (assignor != null) {
      String cls =
          switch (assignor) {
            case "range" -> RangeAssignor.class.getName();
            case "roundrobin" -> RoundRobinAssignor.class.getName();
            case "sticky" -> StickyAssignor.class.getName();
            case "cooperative-sticky" -> CooperativeStickyAssignor.class.getName();
            default -> throw new IllegalArgumentException("unknown assignor " + assignor);
          };
      props.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, cls);
    }
    if (remoteAssignor != null) {
      props.put(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, remoteAssignor);
    }
    if (instanceId != null) {
      props.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, instanceId);
    }

    CountDownLatch done = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  stop = true;
                  try {
                    done.await();
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  }
                }));

    System.out.println(
        "start java "
            + protocol
            + (assignor != null ? " " + assignor : "")
            + (remoteAssignor != null ? " " + remoteAssignor : "")
            + (instanceId != null ? " instance " + instanceId : "")
            + " pid "
            + ProcessHandle.current().pid());
    System.out.flush();
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
      // Offsets of printed records whose commit failed while this member may still own their
      // partition: retried with every later commit (also when a poll brings nothing, so the last
      // batch of a partition is not left uncommitted), dropped when the partition is revoked or
      // lost (its next owner reads from the committed offset again).
      Map<TopicPartition, OffsetAndMetadata> uncommitted = new TreeMap<>(BY_PARTITION);
      consumer.subscribe(
          List.of(topic),
          new ConsumerRebalanceListener() {
            @Override
            public void onPartitionsAssigned(Collection<TopicPartition> parts) {
              show("assigned", parts);
            }

            @Override
            public void onPartitionsRevoked(Collection<TopicPartition> parts) {
              show("revoked", parts);
              uncommitted.keySet().removeAll(parts);
            }

            @Override
            public void onPartitionsLost(Collection<TopicPartition> parts) {
              show("lost", parts);
              uncommitted.keySet().removeAll(parts);
            }
          });
      while (!stop) {
        ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(300));
        Map<TopicPartition, OffsetAndMetadata> offsets = new TreeMap<>(BY_PARTITION);
        offsets.putAll(uncommitted);
        for (ConsumerRecord<String, String> r : records) {
          System.out.println(r.partition() + " " + r.offset() + " " + r.value());
          System.out.flush();
          offsets.put(
              new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
          if (delayMs > 0) {
            Thread.sleep(delayMs);
          }
        }
        if (offsets.isEmpty()) {
          continue;
        }
        // Announced first: a member killed during the commit may or may not have committed.
        System.out.println("committing");
        System.out.flush();
        try {
          consumer.commitSync(offsets);
        } catch (Exception e) {
          System.out.println("commit-failed " + e.getClass().getSimpleName() + " " + e.getMessage());
          System.out.flush();
          uncommitted.putAll(offsets);
          continue;
        }
        uncommitted.clear();
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : offsets.entrySet()) {
          System.out.println("committed " + e.getKey().partition() + " " + e.getValue().offset());
        }
        System.out.flush();
      }
    } finally {
      System.out.println("closed");
      System.out.flush();
      done.countDown();
    }
  }

  private static void show(String what, Collection<TopicPartition> parts) {
    StringBuilder b = new StringBuilder(what).append(" [");
    parts.stream()
        .map(TopicPartition::partition)
        .sorted()
        .forEach(p -> b.append(b.charAt(b.length() - 1) == '[' ? "" : ",").append(p));
    System.out.println(b.append("]"));
    System.out.flush();
  }
}
