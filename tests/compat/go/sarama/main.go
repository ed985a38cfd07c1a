// Command sarama runs the round-trip checks with IBM/sarama.
//
//	sarama [--groups] [--bootstrap HOST:PORT] TOPIC
//
// Sarama's ConsumerMessage carries no timestamp type; the exact CreateTime value is compared,
// which LogAppendTime could not reproduce.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"freshet.dev/compat/common"
)

const client = "sarama"

func main() { common.Main(client, run, runGroups) }

var codecs = map[string]sarama.CompressionCodec{
	"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
	"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
}

func config() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V4_0_0_0
	c.ClientID = "freshet-compat-sarama"
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Partitioner = sarama.NewManualPartitioner
	// Sarama's idempotent producer needs one in-flight request per connection.
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Consumer.Return.Errors = true
	c.Consumer.Offsets.AutoCommit.Enable = false
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	return c
}

func checkAdmin(adm sarama.ClusterAdmin, topic string) error {
	other := topic + "-admin"
	retention := "3600000"
	detail := &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1, ConfigEntries: map[string]*string{"retention.ms": &retention}}
	if err := adm.CreateTopic(other, detail, false); err != nil {
		return fmt.Errorf("create %s: %w", other, err)
	}
	md, err := adm.DescribeTopics([]string{other})
	if err != nil {
		return err
	}
	if err := common.Expect("partition count of "+other, 3, len(md[0].Partitions)); err != nil {
		return err
	}
	entries, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: other})
	if err != nil {
		return err
	}
	values := map[string]string{}
	for _, e := range entries {
		values[e.Name] = e.Value
	}
	if err := common.Expect("retention.ms", "3600000", values["retention.ms"]); err != nil {
		return err
	}
	if err := common.Expect("cleanup.policy", "delete", values["cleanup.policy"]); err != nil {
		return err
	}
	if err := adm.DeleteTopic(other); err != nil {
		return err
	}
	return common.WaitUntil(other+" gone", func() (bool, error) {
		all, err := adm.ListTopics()
		_, present := all[other]
		return err == nil && !present, err
	})
}

func produce(a common.Args, records []common.Record, codec string, firstOffset int64) error {
	cfg := config()
	cfg.Producer.Compression = codecs[codec]
	p, err := sarama.NewSyncProducer([]string{a.Bootstrap}, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, len(records))
	for i, r := range records {
		msgs[i] = &sarama.ProducerMessage{Topic: a.Topic, Partition: 0, Value: sarama.ByteEncoder(r.Value), Timestamp: time.UnixMilli(r.TimestampMs)}
		if r.Key != nil {
			msgs[i].Key = sarama.ByteEncoder(r.Key)
		}
		for _, h := range r.Headers {
			msgs[i].Headers = append(msgs[i].Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
		}
	}
	if err := p.SendMessages(msgs); err != nil {
		return fmt.Errorf("%s: %w", codec, err)
	}
	for i, m := range msgs {
		if err := common.Expect(fmt.Sprintf("%s record %d offset", codec, i), firstOffset+int64(i), m.Offset); err != nil {
			return err
		}
	}
	return nil
}

func toRecord(m *sarama.ConsumerMessage) common.Record {
	out := common.Record{Key: m.Key, Value: m.Value, TimestampMs: m.Timestamp.UnixMilli()}
	for _, h := range m.Headers {
		out.Headers = append(out.Headers, common.Header{Key: string(h.Key), Value: h.Value})
	}
	return out
}

func verify(m *sarama.ConsumerMessage, expected []common.Record, offset int64) error {
	if err := common.Expect("offset", offset, m.Offset); err != nil {
		return err
	}
	return common.Verify(offset, expected[offset], toRecord(m), true)
}

// consumeFrom reads count messages from partition 0 starting at offset (or OffsetOldest/Newest).
func consumeFrom(consumer sarama.Consumer, topic string, offset int64, count int) ([]*sarama.ConsumerMessage, error) {
	pc, err := consumer.ConsumePartition(topic, 0, offset)
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	return collect(pc.Messages(), pc.Errors(), count)
}

func collect(msgs <-chan *sarama.ConsumerMessage, errs <-chan *sarama.ConsumerError, count int) ([]*sarama.ConsumerMessage, error) {
	var got []*sarama.ConsumerMessage
	deadline := time.After(common.Timeout)
	for len(got) < count {
		select {
		case m := <-msgs:
			got = append(got, m)
		case e := <-errs:
			return nil, e
		case <-deadline:
			return nil, common.Mismatch{What: fmt.Sprintf("expected %d records within %v, got %d", count, common.Timeout, len(got))}
		}
	}
	return got, nil
}

func checkConsume(a common.Args, cl sarama.Client, expected []common.Record) error {
	n := int64(len(expected))
	oldest, err := cl.GetOffset(a.Topic, 0, sarama.OffsetOldest)
	if err != nil {
		return err
	}
	newest, err := cl.GetOffset(a.Topic, 0, sarama.OffsetNewest)
	if err != nil {
		return err
	}
	if err := common.Expect("oldest and newest offsets", [2]int64{0, n}, [2]int64{oldest, newest}); err != nil {
		return err
	}
	consumer, err := sarama.NewConsumerFromClient(cl)
	if err != nil {
		return err
	}
	defer consumer.Close()
	got, err := consumeFrom(consumer, a.Topic, sarama.OffsetOldest, len(expected))
	if err != nil {
		return err
	}
	for i, m := range got {
		if err := verify(m, expected, int64(i)); err != nil {
			return err
		}
	}
	if got, err = consumeFrom(consumer, a.Topic, 25, 1); err != nil {
		return err
	}
	if err := verify(got[0], expected, 25); err != nil {
		return err
	}
	return checkTimeAndEnd(a, cl, consumer, expected)
}

func checkTimeAndEnd(a common.Args, cl sarama.Client, consumer sarama.Consumer, expected []common.Record) error {
	const target = 33
	byTime, err := cl.GetOffset(a.Topic, 0, expected[target].TimestampMs-500)
	if err != nil {
		return err
	}
	if err := common.Expect("offset for a timestamp between two records", int64(target), byTime); err != nil {
		return err
	}
	got, err := consumeFrom(consumer, a.Topic, byTime, 1)
	if err != nil {
		return err
	}
	if err := verify(got[0], expected, target); err != nil {
		return err
	}
	pc, err := consumer.ConsumePartition(a.Topic, 0, sarama.OffsetNewest)
	if err != nil {
		return err
	}
	defer pc.Close()
	time.Sleep(300 * time.Millisecond)
	extra := common.Record{Key: []byte("k"), Value: []byte("after-end"), TimestampMs: common.BaseTimestampMs() + 3_000_000}
	if err := produce(a, []common.Record{extra}, "none", int64(len(expected))); err != nil {
		return err
	}
	after, err := collect(pc.Messages(), pc.Errors(), 1)
	if err != nil {
		return err
	}
	return common.Expect("record after OffsetNewest", [2]any{int64(len(expected)), "after-end"}, [2]any{after[0].Offset, string(after[0].Value)})
}

func run(a common.Args) error {
	cl, err := sarama.NewClient([]string{a.Bootstrap}, config())
	if err != nil {
		return err
	}
	defer cl.Close()
	adm, err := sarama.NewClusterAdminFromClient(cl)
	if err != nil {
		return err
	}
	s := common.Sections{Client: client}
	expected := common.ExpectedRecords(common.BaseTimestampMs(), len(common.Codecs)*common.RecordsPerCodec)
	produced := s.Run("idempotent produce (5 codecs)", func() error {
		if err := adm.CreateTopic(a.Topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
			return err
		}
		return common.ProduceAll(expected, func(r []common.Record, codec string, first int64) error {
			return produce(a, r, codec, first)
		})
	})
	if produced {
		s.Run("consume from the oldest, an offset, a timestamp's offset, the newest", func() error {
			return checkConsume(a, cl, expected)
		})
	}
	s.Run("admin: create with configs, describe, describe config, list, delete", func() error { return checkAdmin(adm, a.Topic) })
	return s.Err()
}

// handler verifies the records of one group session and marks commitAt once count have arrived.
type handler struct {
	expected []common.Record
	first    int64
	count    int
	commitAt int64
	done     chan error
}

// report hands the first outcome to groupConsume; later sessions (after it returned) are ignored.
func (h *handler) report(err error) {
	select {
	case h.done <- err:
	default:
	}
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	seen := 0
	for m := range claim.Messages() {
		if err := verify(m, h.expected, h.first+int64(seen)); err != nil {
			h.report(err)
			return err
		}
		seen++
		if seen == h.count {
			s.MarkOffset(m.Topic, m.Partition, h.commitAt, "compat")
			s.Commit()
			h.report(nil)
			return nil
		}
	}
	return nil
}

func groupConsume(a common.Args, group string, h *handler) error {
	g, err := sarama.NewConsumerGroup([]string{a.Bootstrap}, group, config())
	if err != nil {
		return err
	}
	defer g.Close()
	ctx, cancel := context.WithTimeout(context.Background(), common.Timeout)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{a.Topic}, h); err != nil && !errors.Is(err, context.Canceled) {
				h.report(err)
				return
			}
		}
	}()
	select {
	case err := <-h.done:
		return err
	case <-ctx.Done():
		return common.Mismatch{What: "group " + group + " received no complete session within the timeout"}
	}
}

func expectGroupOffset(adm sarama.ClusterAdmin, group, topic string, want int64) error {
	resp, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0}})
	if err != nil {
		return err
	}
	block := resp.GetBlock(topic, 0)
	if block == nil {
		return common.Mismatch{What: "no committed offset for " + topic}
	}
	return common.Expect("committed offset of "+group, want, block.Offset)
}

func runGroups(a common.Args) error {
	cl, err := sarama.NewClient([]string{a.Bootstrap}, config())
	if err != nil {
		return err
	}
	defer cl.Close()
	adm, err := sarama.NewClusterAdminFromClient(cl)
	if err != nil {
		return err
	}
	if err := adm.CreateTopic(a.Topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		return err
	}
	expected := common.ExpectedRecords(common.BaseTimestampMs(), 2*common.RecordsPerCodec)
	if err := produce(a, expected[:common.RecordsPerCodec], "none", 0); err != nil {
		return err
	}
	if err := produce(a, expected[common.RecordsPerCodec:], "lz4", common.RecordsPerCodec); err != nil {
		return err
	}
	group, half := a.Topic+"-group", len(expected)/2
	first := &handler{expected: expected, first: 0, count: len(expected), commitAt: int64(half), done: make(chan error, 1)}
	if err := groupConsume(a, group, first); err != nil {
		return err
	}
	if err := expectGroupOffset(adm, group, a.Topic, int64(half)); err != nil {
		return err
	}
	rest := &handler{expected: expected, first: int64(half), count: len(expected) - half, commitAt: int64(len(expected)), done: make(chan error, 1)}
	if err := groupConsume(a, group, rest); err != nil {
		return err
	}
	if err := expectGroupOffset(adm, group, a.Topic, int64(len(expected))); err != nil {
		return err
	}
	fmt.Printf("%s: consumer group subscribe, commit and resume OK on %s\n", client, a.Topic)
	return nil
}
