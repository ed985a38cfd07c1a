package dev.freshet.compat;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * One consumer-group member for tests/compat/group-churn.py.
 *
 * <p>{@code GroupMember [--bootstrap HOST:PORT] [--protocol classic|consumer] [--delay-ms MS] GROUP
 * TOPIC}: prints {@code PARTITION OFFSET VALUE} for every record, commits each poll batch
 * synchronously (printing {@code committing} before) and then prints {@code committed PARTITION
 * NEXT_OFFSET} per partition (or {@code
 * commit-failed ...}). SIGTERM: the batch in hand is finished and committed, the consumer is closed
 * (leaving the group) and {@code closed} is printed.
 */
public final class GroupMember {
  private static volatile boolean stop = false;

  public static void main(String[] args) throws Exception {
    String bootstrap = System.getenv().getOrDefault("BOOTSTRAP", "127.0.0.1:9092");
    String protocol = "classic";
    long delayMs = 0;
    List<String> rest = new java.util.ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--bootstrap" -> bootstrap = args[++i];
        case "--protocol" -> protocol = args[++i];
        case "--delay-ms" -> delayMs = Long.parseLong(args[++i]);
        default -> rest.add(args[i]);
      }
    }
    if (rest.size() != 2) {
      System.err.println("usage: GroupMember [--bootstrap H:P] [--protocol P] [--delay-ms MS] GROUP TOPIC");
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

    System.out.println("start java " + protocol + " pid " + ProcessHandle.current().pid());
    System.out.flush();
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
      consumer.subscribe(List.of(topic));
      while (!stop) {
        ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(300));
        Map<TopicPartition, OffsetAndMetadata> offsets = new TreeMap<>(
            (a, b) -> Integer.compare(a.partition(), b.partition()));
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
          continue;
        }
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
}
