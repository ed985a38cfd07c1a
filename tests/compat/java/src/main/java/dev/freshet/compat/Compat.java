package dev.freshet.compat;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Round-trip checks with the official Java client against any bootstrap server.
 *
 * <p>Usage: {@code Compat [--groups] [--bootstrap HOST:PORT] TOPIC}. Without {@code --groups} it
 * runs the admin, produce and assign-based consume checks; with it, only the consumer-group check
 * (kept apart because group coordination comes later in Freshet). Any mismatch ends the program
 * with exit code 1 and one line that names what differed.
 */
public final class Compat {
  static final List<String> CODECS = List.of("none", "gzip", "snappy", "lz4", "zstd");
  static final int RECORDS_PER_CODEC = 10;
  static final Duration TIMEOUT = Duration.ofSeconds(30);

  /** Thrown for any difference between what was sent and what came back. */
  static final class Mismatch extends RuntimeException {
    Mismatch(String message) {
      super(message);
    }
  }

  /** One record as the test defines it; the same data is used to produce and to verify. */
  record Expected(byte[] key, byte[] value, List<Header> headers, long timestampMs) {}

  private final String bootstrap;
  private final String topic;
  private final long baseTimestampMs;

  Compat(String bootstrap, String topic) {
    this.bootstrap = bootstrap;
    this.topic = topic;
    // Whole seconds in the recent past: inside the broker's default timestamp acceptance window.
    this.baseTimestampMs = (System.currentTimeMillis() / 1000) * 1000 - 3_600_000L;
  }

  public static void main(String[] args) {
    System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    boolean groups = false;
    String bootstrap = Optional.ofNullable(System.getenv("BOOTSTRAP")).orElse("127.0.0.1:9092");
    String topic = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--groups" -> groups = true;
        case "--bootstrap" -> bootstrap = args[++i];
        default -> topic = args[i];
      }
    }
    if (topic == null) {
      System.err.println("usage: Compat [--groups] [--bootstrap HOST:PORT] TOPIC");
      System.exit(2);
    }
    Compat compat = new Compat(bootstrap, topic);
    try {
      if (groups) {
        compat.runGroups();
      } else {
        compat.runAll();
      }
      System.out.println("java: OK");
    } catch (Mismatch e) {
      System.err.println("java: MISMATCH: " + e.getMessage());
      System.exit(1);
    } catch (Exception e) {
      System.err.println("java: ERROR: " + e);
      e.printStackTrace();
      System.exit(1);
    }
  }

  /** One independent part of the run; a failed section does not hide the results of the others. */
  interface Section {
    void run() throws Exception;
  }

  private final List<String> failedSections = new ArrayList<>();

  /** Runs a section, prints its outcome, and returns whether it passed. */
  boolean section(String name, Section body) {
    try {
      body.run();
      System.out.println("java: " + name + ": OK");
      return true;
    } catch (Exception e) {
      Throwable cause = e.getCause() != null && !(e instanceof Mismatch) ? e.getCause() : e;
      System.out.println("java: " + name + ": FAILED: " + cause);
      failedSections.add(name);
      return false;
    }
  }

  void runAll() throws Exception {
    try (Admin admin = Admin.create(adminProps())) {
      List<Expected> expected = expectedRecords();
      boolean produced = section("produce (5 codecs) and consume from the beginning", () -> {
        createTopic(admin, topic, 1, Map.of());
        produceAll(expected);
        checkConsume(expected);
      });
      if (produced) {
        section("seek, offsetsForTimes, seekToEnd", () -> checkSeeks(expected));
      }
      section("admin: create with configs, describe, describeConfigs, list, delete", () -> checkAdmin(admin));
    }
    if (!failedSections.isEmpty()) {
      throw new Mismatch("failed: " + String.join("; ", failedSections));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Data

  List<Expected> expectedRecords() {
    List<Expected> out = new ArrayList<>();
    for (int i = 0; i < CODECS.size() * RECORDS_PER_CODEC; i++) {
      out.add(expectedRecord(i));
    }
    return out;
  }

  Expected expectedRecord(int i) {
    // Record 0 of each codec batch has no key: clients must keep "null" apart from "empty".
    byte[] key = i % RECORDS_PER_CODEC == 0 ? null : utf8("key-" + i);
    // One large, compressible value per batch so that codecs actually shrink something.
    String value = i % RECORDS_PER_CODEC == 5 ? "value-" + i + "-" + "x".repeat(20_000) : "value-" + i + "-é✓";
    List<Header> headers = List.of(
        new RecordHeader("h-index", utf8(Integer.toString(i))),
        new RecordHeader("dup", utf8("first")),
        new RecordHeader("dup", utf8("second")),
        new RecordHeader("empty", new byte[0]));
    return new Expected(key, utf8(value), headers, baseTimestampMs + i * 1000L);
  }

  // ---------------------------------------------------------------------------------------------
  // Admin

  void checkAdmin(Admin admin) throws Exception {
    String other = topic + "-admin";
    createTopic(admin, other, 3, Map.of("retention.ms", "3600000", "cleanup.policy", "delete"));
    TopicDescription description = admin.describeTopics(List.of(other)).allTopicNames().get().get(other);
    expect("partition count of " + other, 3, description.partitions().size());
    description.partitions().forEach(p -> {
      if (p.leader() == null || p.leader().isEmpty()) {
        throw new Mismatch("partition " + p.partition() + " of " + other + " has no leader");
      }
    });
    Config config = describeTopicConfig(admin, other);
    expect("retention.ms of " + other, "3600000", configValue(config, "retention.ms"));
    expect("cleanup.policy of " + other, "delete", configValue(config, "cleanup.policy"));
    ConfigEntry retention = config.get("retention.ms");
    expect("source of retention.ms", ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, retention.source());
    ConfigEntry segment = config.get("segment.bytes");
    if (segment == null || !segment.isDefault()) {
      throw new Mismatch("segment.bytes should be listed as a default, got " + segment);
    }
    Set<String> names = admin.listTopics().names().get();
    if (!names.contains(other)) {
      throw new Mismatch("listTopics does not contain " + other + ": " + names);
    }
    admin.deleteTopics(List.of(other)).all().get();
    waitUntil("topic " + other + " gone from listTopics", () -> !admin.listTopics().names().get().contains(other));
  }

  static void createTopic(Admin admin, String name, int partitions, Map<String, String> configs) throws Exception {
    NewTopic newTopic = new NewTopic(name, partitions, (short) 1).configs(configs);
    admin.createTopics(List.of(newTopic)).all().get(30, TimeUnit.SECONDS);
  }

  static Config describeTopicConfig(Admin admin, String name) throws Exception {
    ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, name);
    return admin.describeConfigs(List.of(resource)).all().get().get(resource);
  }

  static String configValue(Config config, String name) {
    ConfigEntry entry = config.get(name);
    if (entry == null) {
      throw new Mismatch("describeConfigs has no entry " + name);
    }
    return entry.value();
  }

  // ---------------------------------------------------------------------------------------------
  // Produce

  void produceAll(List<Expected> expected) throws Exception {
    for (int c = 0; c < CODECS.size(); c++) {
      List<Expected> slice = expected.subList(c * RECORDS_PER_CODEC, (c + 1) * RECORDS_PER_CODEC);
      produceWithCodec(CODECS.get(c), slice, c * RECORDS_PER_CODEC);
    }
  }

  void produceWithCodec(String codec, List<Expected> slice, long firstOffset) throws Exception {
    Properties props = new Properties();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ProducerConfig.ACKS_CONFIG, "all");
    props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
    props.put(ProducerConfig.LINGER_MS_CONFIG, "20");
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    // enable.idempotence is left at its default (true since Kafka 3.0) on purpose.
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
      List<Future<RecordMetadata>> futures = new ArrayList<>();
      for (Expected e : slice) {
        futures.add(producer.send(new ProducerRecord<>(topic, 0, e.timestampMs(), e.key(), e.value(), e.headers())));
      }
      producer.flush();
      for (int i = 0; i < futures.size(); i++) {
        RecordMetadata md = futures.get(i).get(30, TimeUnit.SECONDS);
        String what = "codec " + codec + " record " + i;
        expect(what + " partition", 0, md.partition());
        expect(what + " offset", firstOffset + i, md.offset());
        expect(what + " timestamp", slice.get(i).timestampMs(), md.timestamp());
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Consume

  KafkaConsumer<byte[], byte[]> consumer(String groupId) {
    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.CHECK_CRCS_CONFIG, "true");
    if (groupId != null) {
      props.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
      // COMPAT_GROUP_PROTOCOL=consumer runs the group checks with KIP-848's protocol.
      String protocol = System.getenv("COMPAT_GROUP_PROTOCOL");
      if (protocol != null && !protocol.isEmpty()) {
        props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
      }
    }
    return new KafkaConsumer<>(props);
  }

  void checkConsume(List<Expected> expected) {
    TopicPartition tp = new TopicPartition(topic, 0);
    try (KafkaConsumer<byte[], byte[]> consumer = consumer(null)) {
      consumer.assign(List.of(tp));
      consumer.seekToBeginning(List.of(tp));
      List<ConsumerRecord<byte[], byte[]>> got = pollUntil(consumer, expected.size());
      expect("records consumed from the beginning", expected.size(), got.size());
      for (int i = 0; i < got.size(); i++) {
        verify(got.get(i), expected.get(i), i);
      }
    }
  }

  void checkSeeks(List<Expected> expected) {
    TopicPartition tp = new TopicPartition(topic, 0);
    long total = expected.size();
    try (KafkaConsumer<byte[], byte[]> consumer = consumer(null)) {
      consumer.assign(List.of(tp));
      expect("beginningOffsets", 0L, consumer.beginningOffsets(List.of(tp)).get(tp));
      expect("endOffsets", total, consumer.endOffsets(List.of(tp)).get(tp));

      consumer.seek(tp, 25);
      ConsumerRecord<byte[], byte[]> first = pollUntil(consumer, 1).get(0);
      verify(first, expected.get(25), 25);

      int target = 33;
      OffsetAndTimestamp byTime = consumer.offsetsForTimes(Map.of(tp, expected.get(target).timestampMs())).get(tp);
      if (byTime == null) {
        throw new Mismatch("offsetsForTimes returned nothing for record " + target);
      }
      expect("offsetsForTimes offset", (long) target, byTime.offset());
      expect("offsetsForTimes timestamp", expected.get(target).timestampMs(), byTime.timestamp());
      // A timestamp between two records resolves to the later one.
      OffsetAndTimestamp between = consumer.offsetsForTimes(Map.of(tp, expected.get(target).timestampMs() - 500)).get(tp);
      expect("offsetsForTimes between records", (long) target, between.offset());
      OffsetAndTimestamp future = consumer.offsetsForTimes(Map.of(tp, System.currentTimeMillis() + 86_400_000L)).get(tp);
      if (future != null) {
        throw new Mismatch("offsetsForTimes after the last record should be null, got " + future);
      }

      consumer.seek(tp, byTime.offset());
      verify(pollUntil(consumer, 1).get(0), expected.get(target), target);

      consumer.seekToEnd(List.of(tp));
      expect("position after seekToEnd", total, consumer.position(tp));
      List<ConsumerRecord<byte[], byte[]>> none = pollFor(consumer, Duration.ofMillis(500));
      expect("records after seekToEnd", 0, none.size());
    }
  }

  static List<ConsumerRecord<byte[], byte[]>> pollUntil(KafkaConsumer<byte[], byte[]> consumer, int count) {
    List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
    long deadline = System.nanoTime() + TIMEOUT.toNanos();
    while (got.size() < count && System.nanoTime() < deadline) {
      consumer.poll(Duration.ofMillis(200)).forEach(got::add);
    }
    if (got.size() < count) {
      throw new Mismatch("expected at least " + count + " records within " + TIMEOUT + ", got " + got.size());
    }
    return got;
  }

  static List<ConsumerRecord<byte[], byte[]>> pollFor(KafkaConsumer<byte[], byte[]> consumer, Duration duration) {
    List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
    long deadline = System.nanoTime() + duration.toNanos();
    while (System.nanoTime() < deadline) {
      consumer.poll(Duration.ofMillis(100)).forEach(got::add);
    }
    return got;
  }

  static void verify(ConsumerRecord<byte[], byte[]> got, Expected want, long offset) {
    String what = "record at offset " + offset;
    expect(what + " offset", offset, got.offset());
    expectBytes(what + " key", want.key(), got.key());
    expectBytes(what + " value", want.value(), got.value());
    expect(what + " timestamp type", TimestampType.CREATE_TIME, got.timestampType());
    expect(what + " timestamp", want.timestampMs(), got.timestamp());
    Header[] headers = got.headers().toArray();
    expect(what + " header count", want.headers().size(), headers.length);
    for (int h = 0; h < headers.length; h++) {
      expect(what + " header " + h + " key", want.headers().get(h).key(), headers[h].key());
      expectBytes(what + " header " + h + " value", want.headers().get(h).value(), headers[h].value());
    }
    // The duplicate key must come back twice, in order (Headers.headers(key) keeps both).
    List<String> dups = new ArrayList<>();
    got.headers().headers("dup").forEach(h -> dups.add(new String(h.value(), StandardCharsets.UTF_8)));
    expect(what + " duplicate header values", List.of("first", "second"), dups);
  }

  // ---------------------------------------------------------------------------------------------
  // Groups (separate: `--groups`)

  void runGroups() throws Exception {
    String group = topic + "-group";
    List<Expected> expected = expectedRecords().subList(0, 2 * RECORDS_PER_CODEC);
    try (Admin admin = Admin.create(adminProps())) {
      createTopic(admin, topic, 1, Map.of());
      produceWithCodec("none", expected.subList(0, RECORDS_PER_CODEC), 0);
      produceWithCodec("lz4", expected.subList(RECORDS_PER_CODEC, expected.size()), RECORDS_PER_CODEC);
      TopicPartition tp = new TopicPartition(topic, 0);
      long half = expected.size() / 2;
      try (KafkaConsumer<byte[], byte[]> consumer = consumer(group)) {
        consumer.subscribe(List.of(topic));
        List<ConsumerRecord<byte[], byte[]>> got = pollUntil(consumer, expected.size());
        for (int i = 0; i < expected.size(); i++) {
          verify(got.get(i), expected.get(i), i);
        }
        expect("assignment", Set.of(tp), consumer.assignment());
        consumer.commitSync(Map.of(tp, new OffsetAndMetadata(half, "compat")));
        OffsetAndMetadata committed = consumer.committed(Set.of(tp)).get(tp);
        expect("committed offset", half, committed.offset());
        expect("committed metadata", "compat", committed.metadata());
        // The group really runs the protocol asked for (classic, or KIP-848's "consumer").
        String protocol = System.getenv().getOrDefault("COMPAT_GROUP_PROTOCOL", "classic");
        org.apache.kafka.common.GroupType type = admin.describeConsumerGroups(List.of(group))
            .describedGroups().get(group).get().type();
        expect("group type", protocol.isEmpty() ? "classic" : protocol,
            type.toString().toLowerCase(java.util.Locale.ROOT));
      }
      Map<TopicPartition, OffsetAndMetadata> listed =
          admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
      expect("listConsumerGroupOffsets", half, listed.get(tp).offset());
      // A new member of the same group resumes at the committed offset.
      try (KafkaConsumer<byte[], byte[]> consumer = consumer(group)) {
        consumer.subscribe(List.of(topic));
        List<ConsumerRecord<byte[], byte[]>> rest = pollUntil(consumer, (int) (expected.size() - half));
        verify(rest.get(0), expected.get((int) half), half);
        consumer.commitSync();
      }
      expect("group offset after second commitSync", (long) expected.size(),
          admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get().get(tp).offset());
      System.out.println("java: consumer group subscribe, commit and resume OK on " + topic);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers

  Properties adminProps() {
    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
    return props;
  }

  interface Check {
    boolean ok() throws Exception;
  }

  static void waitUntil(String what, Check check) throws Exception {
    long deadline = System.nanoTime() + TIMEOUT.toNanos();
    while (!check.ok()) {
      if (System.nanoTime() > deadline) {
        throw new Mismatch("timed out waiting for " + what);
      }
      Thread.sleep(100);
    }
  }

  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static void expect(String what, Object want, Object got) {
    if (!java.util.Objects.equals(want, got)) {
      throw new Mismatch(what + ": expected " + want + ", got " + got);
    }
  }

  static void expectBytes(String what, byte[] want, byte[] got) {
    if (!Arrays.equals(want, got)) {
      throw new Mismatch(what + ": expected " + show(want) + ", got " + show(got));
    }
  }

  static String show(byte[] bytes) {
    if (bytes == null) {
      return "null";
    }
    String s = new String(bytes, StandardCharsets.UTF_8);
    return s.length() > 60 ? "\"" + s.substring(0, 60) + "...\" (" + bytes.length + " bytes)" : "\"" + s + "\"";
  }
}
