package dev.freshet.bench;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * How long a group of consumers takes to settle after partitions are added to the topic it
 * consumes.
 *
 * <p>For each protocol asked for, against one broker: create a topic with {@code --initial}
 * partitions, start {@code --consumers} KafkaConsumer threads in one group subscribed to it, wait
 * until every partition is owned by exactly one consumer and nothing has changed for {@code
 * --quiet-ms}, add partitions up to {@code --initial + --added} with Admin.createPartitions, and
 * measure from the moment that call returns until the consumers' owned partitions (tracked from
 * each consumer's rebalance listener, on its own poll thread) cover every partition exactly once.
 * That state must then hold for {@code --hold-ms} (so a later revocation or a second rebalance
 * round restarts the clock); the settle time is when it last became true.
 *
 * <p>Also reported: the same settle time measured from just before the createPartitions call
 * ({@code settle_from_call_ms}) and how long the call took ({@code create_partitions_ms}); a
 * broker that makes the new partitions visible (and assigns them) before it answers gets a
 * negative {@code settle_ms}.
 *
 * <p>Protocols: {@code classic-default} (classic protocol, the Java client's default
 * partition.assignment.strategy [range, cooperative-sticky], which selects range with eager
 * rebalancing), {@code classic-cooperative-sticky} (classic protocol, cooperative-sticky only)
 * and {@code consumer} (KIP-848, group.protocol=consumer, the broker's default server-side
 * assignor). A broker without ConsumerGroupHeartbeat (ApiVersions key 68) gets "unsupported" for
 * the last one.
 *
 * <p>Prints one line per protocol: {@code RESULT broker=B protocol=P settle_ms=N ...} (or
 * settle_ms=unsupported|timeout|error with a reason).
 */
public final class GroupSettle {
  private static final short CONSUMER_GROUP_HEARTBEAT = 68;

  private String bootstrap = "127.0.0.1:9092";
  private String broker = "broker";
  private List<String> protocols = List.of("classic-default", "classic-cooperative-sticky", "consumer");
  private int consumers = 10;
  private int initial = 100;
  private int added = 900;
  private long metadataMaxAgeMs = 1000;
  private long quietMs = 6000;
  private long holdMs = 6000;
  private long timeoutMs = 180_000;
  private String tag = Long.toString(System.currentTimeMillis());

  public static void main(String[] args) throws Exception {
    GroupSettle b = new GroupSettle();
    b.parse(args);
    int failures = 0;
    for (String p : b.protocols) {
      if (!b.runOne(p)) {
        failures++;
      }
    }
    System.exit(failures == 0 ? 0 : 1);
  }

  private void parse(String[] args) {
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (i + 1 >= args.length) {
        usage("missing value for " + a);
      }
      String v = args[++i];
      switch (a) {
        case "--bootstrap" -> bootstrap = v;
        case "--broker" -> broker = v;
        case "--protocols" -> protocols = List.of(v.split(","));
        case "--consumers" -> consumers = Integer.parseInt(v);
        case "--initial" -> initial = Integer.parseInt(v);
        case "--added" -> added = Integer.parseInt(v);
        case "--metadata-max-age-ms" -> metadataMaxAgeMs = Long.parseLong(v);
        case "--quiet-ms" -> quietMs = Long.parseLong(v);
        case "--hold-ms" -> holdMs = Long.parseLong(v);
        case "--timeout-ms" -> timeoutMs = Long.parseLong(v);
        case "--tag" -> tag = v;
        default -> usage("unknown option " + a);
      }
    }
    for (String p : protocols) {
      if (!List.of("classic-default", "classic-cooperative-sticky", "consumer").contains(p)) {
        usage("unknown protocol " + p);
      }
    }
  }

  private static void usage(String why) {
    System.err.println("group-settle: " + why);
    System.err.println(
        "usage: GroupSettle [--bootstrap H:P] [--broker NAME] [--protocols"
            + " classic-default,classic-cooperative-sticky,consumer] [--consumers 10] [--initial 100]"
            + " [--added 900] [--metadata-max-age-ms 1000] [--quiet-ms 6000] [--hold-ms 6000]"
            + " [--timeout-ms 180000] [--tag T]");
    System.exit(2);
  }

  private void result(String protocol, String settle, String rest) {
    System.out.println(
        "RESULT broker=" + broker + " protocol=" + protocol + " settle_ms=" + settle + (rest.isEmpty() ? "" : " " + rest));
    System.out.flush();
  }

  private static void log(String msg) {
    System.err.printf("[%tT.%<tL] %s%n", System.currentTimeMillis(), msg);
  }

  /** Which partitions each consumer owns, as its rebalance listener reports them. */
  private static final class Tracker {
    private final Map<Integer, Set<TopicPartition>> owned = new HashMap<>();
    private final Map<Integer, Integer> assignCallbacks = new HashMap<>();
    private final Map<Integer, Throwable> errors = new HashMap<>();
    private final Set<Integer> polled = new HashSet<>();
    /** Each consumer's heartbeat-total metric (heartbeats sent), as of its last poll. */
    private final Map<Integer, Double> heartbeats = new HashMap<>();
    private int expected;
    private long lastChangeNs = System.nanoTime();
    /** When the exactly-once-coverage condition last became true, or -1 while it is false. */
    private long holdsSinceNs = -1;
    private int changes;
    /** Partitions before the addition, and when a consumer was first handed one of the new ones. */
    private int initialCount = Integer.MAX_VALUE;
    private long firstNewNs = -1;

    synchronized void expect(int partitions) {
      initialCount = Math.min(initialCount, partitions);
      expected = partitions;
      reevaluate(System.nanoTime());
    }

    synchronized void assigned(int consumer, Collection<TopicPartition> tps) {
      if (firstNewNs < 0 && expected > initialCount && tps.stream().anyMatch(tp -> tp.partition() >= initialCount)) {
        firstNewNs = System.nanoTime();
      }
      owned.computeIfAbsent(consumer, k -> new HashSet<>()).addAll(tps);
      assignCallbacks.merge(consumer, 1, Integer::sum);
      changed();
    }

    synchronized void removed(int consumer, Collection<TopicPartition> tps) {
      owned.computeIfAbsent(consumer, k -> new HashSet<>()).removeAll(tps);
      changed();
    }

    synchronized double heartbeatSum() {
      return heartbeats.values().stream().mapToDouble(Double::doubleValue).sum();
    }

    synchronized void polledOnce(int consumer, double heartbeatTotal) {
      heartbeats.put(consumer, heartbeatTotal);
      if (polled.add(consumer)) {
        notifyAll();
      }
    }

    synchronized void failed(int consumer, Throwable t) {
      errors.put(consumer, t);
      notifyAll();
    }

    private void changed() {
      long now = System.nanoTime();
      lastChangeNs = now;
      changes++;
      reevaluate(now);
    }

    private void reevaluate(long now) {
      boolean ok = coveredExactlyOnce();
      if (ok && holdsSinceNs < 0) {
        holdsSinceNs = now;
      } else if (!ok) {
        holdsSinceNs = -1;
      }
      notifyAll();
    }

    boolean coveredExactlyOnce() {
      int total = 0;
      Set<TopicPartition> union = new HashSet<>();
      for (Set<TopicPartition> s : owned.values()) {
        total += s.size();
        union.addAll(s);
      }
      return total == expected && union.size() == expected;
    }

    synchronized String describe() {
      int total = 0;
      Map<TopicPartition, Integer> count = new HashMap<>();
      List<Integer> sizes = new ArrayList<>();
      for (Set<TopicPartition> s : owned.values()) {
        total += s.size();
        sizes.add(s.size());
        for (TopicPartition tp : s) {
          count.merge(tp, 1, Integer::sum);
        }
      }
      long dup = count.values().stream().filter(c -> c > 1).count();
      TreeSet<Integer> missing = new TreeSet<>();
      for (int p = 0; p < expected; p++) {
        boolean found = false;
        for (TopicPartition tp : count.keySet()) {
          if (tp.partition() == p) {
            found = true;
            break;
          }
        }
        if (!found) {
          missing.add(p);
        }
      }
      String missingText = missing.stream().limit(10).toList() + (missing.size() > 10 ? "..." : "");
      return "expected=" + expected + " owned_total=" + total + " distinct=" + count.size() + " duplicated=" + dup
          + " missing=" + missing.size() + " " + missingText + " per_consumer=" + sizes + " errors=" + errors.keySet();
    }
  }

  private boolean apiSupported(short apiKey) {
    String[] hp = bootstrap.split(",")[0].split(":");
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress(hp[0], Integer.parseInt(hp[1])), 5000);
      s.setSoTimeout(5000);
      DataOutputStream out = new DataOutputStream(s.getOutputStream());
      byte[] client = "group-settle".getBytes(StandardCharsets.UTF_8);
      // ApiVersions v0 request: header v1 (api key, version, correlation id, client id), empty body.
      out.writeInt(2 + 2 + 4 + 2 + client.length);
      out.writeShort(18);
      out.writeShort(0);
      out.writeInt(7);
      out.writeShort(client.length);
      out.write(client);
      out.flush();
      DataInputStream in = new DataInputStream(s.getInputStream());
      in.readInt();
      if (in.readInt() != 7) {
        throw new IOException("ApiVersions: wrong correlation id");
      }
      short error = in.readShort();
      if (error != 0) {
        throw new IOException("ApiVersions v0 error " + error);
      }
      int n = in.readInt();
      for (int i = 0; i < n; i++) {
        short key = in.readShort();
        in.readShort();
        in.readShort();
        if (key == apiKey) {
          return true;
        }
      }
      return false;
    } catch (IOException e) {
      throw new RuntimeException("ApiVersions against " + bootstrap + " failed", e);
    }
  }

  private Properties consumerProps(String protocol, String group) {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    // Nothing is produced; commits would only add requests to the rebalance path.
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    // Classic consumers learn about new partitions from metadata refreshes (the leader rejoins
    // when the partition count of a subscribed topic changes): the default of 5 minutes would
    // measure the refresh period, not the group. Same value for both brokers.
    p.put(ConsumerConfig.METADATA_MAX_AGE_CONFIG, Long.toString(metadataMaxAgeMs));
    switch (protocol) {
      case "classic-default" -> p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
      case "classic-cooperative-sticky" -> {
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, CooperativeStickyAssignor.class.getName());
      }
      case "consumer" -> p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
      default -> throw new IllegalArgumentException(protocol);
    }
    return p;
  }

  private boolean runOne(String protocol) throws Exception {
    String topic = "settle-" + protocol + "-" + tag;
    String group = "settle-group-" + protocol + "-" + tag;
    if (protocol.equals("consumer") && !apiSupported(CONSUMER_GROUP_HEARTBEAT)) {
      result(protocol, "unsupported", "reason=ApiVersions_lacks_ConsumerGroupHeartbeat");
      return true;
    }
    Properties ap = new Properties();
    ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    Tracker tracker = new Tracker();
    AtomicBoolean stop = new AtomicBoolean();
    CountDownLatch checked = new CountDownLatch(consumers);
    List<Thread> threads = new ArrayList<>();
    try (Admin admin = Admin.create(ap)) {
      long createNs = System.nanoTime();
      admin.createTopics(List.of(new NewTopic(topic, initial, (short) 1))).all().get();
      long createTopicMs = (System.nanoTime() - createNs) / 1_000_000;
      waitPartitions(admin, topic, initial);
      tracker.expect(initial);
      log(broker + " " + protocol + ": topic " + topic + " has " + initial + " partitions; starting " + consumers + " consumers");
      long startNs = System.nanoTime();
      for (int i = 0; i < consumers; i++) {
        final int id = i;
        Thread t = new Thread(() -> consume(id, protocol, group, topic, tracker, stop, checked), "consumer-" + i);
        t.start();
        threads.add(t);
      }
      // Stable: every partition owned exactly once, every poll loop running, no change for quietMs.
      String why = awaitSettled(tracker, startNs, quietMs, true);
      if (why != null) {
        result(protocol, why, "phase=initial " + tracker.describe().replace(' ', '_'));
        return why.equals("unsupported");
      }
      long initialMs = (System.nanoTime() - startNs) / 1_000_000;
      int callbacksBefore;
      synchronized (tracker) {
        callbacksBefore = tracker.assignCallbacks.values().stream().mapToInt(Integer::intValue).sum();
      }
      log(broker + " " + protocol + ": group stable on " + initial + " partitions after " + initialMs + " ms; adding " + added);
      int total = initial + added;
      tracker.expect(total);
      double heartbeatsBefore = tracker.heartbeatSum();
      long callNs = System.nanoTime();
      admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(total))).all().get();
      long t0 = System.nanoTime();
      why = awaitSettled(tracker, t0, holdMs, false);
      if (why != null) {
        result(protocol, why, "phase=after_add " + tracker.describe().replace(' ', '_'));
        return false;
      }
      long holdEndNs = System.nanoTime();
      long settleMs;
      long firstMs;
      String heartbeatRate;
      int callbacks;
      String balance;
      synchronized (tracker) {
        // Negative when the group settled before the createPartitions answer arrived (a broker
        // may publish the new partitions before it answers).
        settleMs = Math.floorDiv(tracker.holdsSinceNs - t0, 1_000_000);
        firstMs = Math.floorDiv(tracker.firstNewNs - t0, 1_000_000);
        heartbeatRate = String.format("%.1f", (tracker.heartbeatSum() - heartbeatsBefore) / ((holdEndNs - callNs) / 1e9));
        callbacks = tracker.assignCallbacks.values().stream().mapToInt(Integer::intValue).sum() - callbacksBefore;
        int min = Integer.MAX_VALUE;
        int max = 0;
        for (Set<TopicPartition> s : tracker.owned.values()) {
          min = Math.min(min, s.size());
          max = Math.max(max, s.size());
        }
        balance = min + ".." + max;
      }
      result(protocol, Long.toString(settleMs),
          "settle_from_call_ms=" + (tracker.holdsSinceNs - callNs) / 1_000_000
              + " create_partitions_ms=" + (t0 - callNs) / 1_000_000
              + " create_topic_ms=" + createTopicMs
              + " first_new_assigned_ms=" + firstMs + " initial_stable_ms=" + initialMs + " assign_callbacks=" + callbacks + " per_consumer=" + balance
              + " heartbeats_per_s=" + heartbeatRate);
      return true;
    } finally {
      stop.set(true);
      for (Thread t : threads) {
        t.join(60_000);
      }
    }
  }

  /**
   * Waits until the tracker's condition has held for {@code holdMs}; null when it did, else the
   * reason (timeout, error, unsupported).
   */
  private String awaitSettled(Tracker tracker, long fromNs, long holdMs, boolean needPolls) throws InterruptedException {
    long deadline = fromNs + timeoutMs * 1_000_000;
    synchronized (tracker) {
      while (true) {
        if (!tracker.errors.isEmpty()) {
          Throwable t = tracker.errors.values().iterator().next();
          for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof UnsupportedVersionException) {
              return "unsupported";
            }
          }
          log("consumer error: " + t);
          return "error";
        }
        long now = System.nanoTime();
        boolean polled = !needPolls || tracker.polled.size() == consumers;
        if (tracker.holdsSinceNs >= 0 && polled) {
          long since = needPolls ? Math.max(tracker.holdsSinceNs, tracker.lastChangeNs) : tracker.holdsSinceNs;
          long left = since + holdMs * 1_000_000 - now;
          if (left <= 0) {
            return null;
          }
          tracker.wait(Math.max(1, left / 1_000_000));
          continue;
        }
        if (now >= deadline) {
          log("timeout: " + tracker.describe());
          return "timeout";
        }
        tracker.wait(Math.max(1, Math.min(1000, (deadline - now) / 1_000_000)));
      }
    }
  }

  private void consume(int id, String protocol, String group, String topic, Tracker tracker, AtomicBoolean stop,
      CountDownLatch checked) {
    try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerProps(protocol, group))) {
      c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
          tracker.removed(id, partitions);
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
          tracker.assigned(id, partitions);
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
          tracker.removed(id, partitions);
        }
      });
      while (!stop.get()) {
        c.poll(Duration.ofMillis(50));
        tracker.polledOnce(id, heartbeatTotal(c));
      }
      // The rebalance listener is what the timing uses; check that it agreed with the
      // consumer's own view at the end (the async consumer may update assignment() a poll
      // before it runs the callback, so this is only checked once the group is quiet).
      Set<TopicPartition> a = c.assignment();
      Set<TopicPartition> o = ownedBy(tracker, id);
      if (!a.equals(o)) {
        log("WARN consumer " + id + ": assignment() has " + a.size() + " partitions, the rebalance listener "
            + o.size());
      }
      checked.countDown();
      // Close only when every consumer has compared: a leaving member would start a rebalance.
      checked.await(10, TimeUnit.SECONDS);
      c.close(Duration.ofSeconds(10));
    } catch (Throwable t) {
      if (!stop.get()) {
        tracker.failed(id, t);
      } else {
        log("consumer " + id + " failed while closing: " + t);
      }
    }
  }

  /** The consumer's count of heartbeat requests sent (both protocols report it under this name). */
  private static double heartbeatTotal(KafkaConsumer<byte[], byte[]> c) {
    for (Map.Entry<MetricName, ? extends Metric> e : c.metrics().entrySet()) {
      if (e.getKey().name().equals("heartbeat-total") && e.getKey().group().endsWith("coordinator-metrics")) {
        Object v = e.getValue().metricValue();
        if (v instanceof Double d) {
          return d;
        }
      }
    }
    return 0;
  }

  private static Set<TopicPartition> ownedBy(Tracker tracker, int id) {
    synchronized (tracker) {
      return new HashSet<>(tracker.owned.getOrDefault(id, Set.of()));
    }
  }

  private static void waitPartitions(Admin admin, String topic, int n) throws InterruptedException, ExecutionException {
    for (int i = 0; i < 300; i++) {
      try {
        TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
        if (d.partitions().size() == n && d.partitions().stream().allMatch(p -> p.leader() != null)) {
          return;
        }
      } catch (ExecutionException e) {
        // Not visible yet.
      }
      Thread.sleep(100);
    }
    throw new IllegalStateException("topic " + topic + " never showed " + n + " partitions with leaders");
  }
}
