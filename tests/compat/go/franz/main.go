// Command franz runs the round-trip checks with franz-go (kgo for data, kadm for admin).
//
//	franz [--groups] [--bootstrap HOST:PORT] TOPIC
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"freshet.dev/compat/common"
)

const client = "franz-go"

func main() { common.Main(client, run, runGroups) }

func codec(name string) kgo.CompressionCodec {
	switch name {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	default:
		return kgo.NoCompression()
	}
}

func newClient(a common.Args, opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(a.Bootstrap)}, opts...)...)
}

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), common.Timeout)
}

func createTopic(adm *kadm.Client, topic string, partitions int32, configs map[string]*string) error {
	c, cancel := ctx()
	defer cancel()
	resp, err := adm.CreateTopic(c, partitions, 1, configs, topic)
	if err != nil {
		return err
	}
	return resp.Err
}

func checkAdmin(adm *kadm.Client, topic string) error {
	other := topic + "-admin"
	retention := "3600000"
	if err := createTopic(adm, other, 3, map[string]*string{"retention.ms": &retention}); err != nil {
		return fmt.Errorf("create %s: %w", other, err)
	}
	c, cancel := ctx()
	defer cancel()
	details, err := adm.ListTopics(c, other)
	if err != nil {
		return err
	}
	d := details[other]
	if err := common.Expect("partition count of "+other, 3, len(d.Partitions)); err != nil {
		return err
	}
	for p, pd := range d.Partitions {
		if err := common.Expect(fmt.Sprintf("leader of %s/%d", other, p), int32(1), pd.Leader); err != nil {
			return err
		}
	}
	if err := checkConfigs(c, adm, other); err != nil {
		return err
	}
	if _, err := adm.DeleteTopic(c, other); err != nil {
		return err
	}
	return common.WaitUntil(other+" gone", func() (bool, error) {
		all, err := adm.ListTopics(c)
		return err == nil && !all.Has(other), err
	})
}

func checkConfigs(c context.Context, adm *kadm.Client, topic string) error {
	rcs, err := adm.DescribeTopicConfigs(c, topic)
	if err != nil {
		return err
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return err
	}
	values := map[string]string{}
	for _, cfg := range rc.Configs {
		if cfg.Value != nil {
			values[cfg.Key] = *cfg.Value
		}
	}
	if err := common.Expect("retention.ms", "3600000", values["retention.ms"]); err != nil {
		return err
	}
	return common.Expect("cleanup.policy", "delete", values["cleanup.policy"])
}

func produce(a common.Args, records []common.Record, codecName string, firstOffset int64) error {
	cl, err := newClient(a,
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is on by default in franz-go
		kgo.ProducerBatchCompression(codec(codecName)),
		kgo.ProducerLinger(20*time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(records))
	for i, r := range records {
		recs[i] = &kgo.Record{Topic: a.Topic, Partition: 0, Key: r.Key, Value: r.Value, Timestamp: time.UnixMilli(r.TimestampMs)}
		for _, h := range r.Headers {
			recs[i].Headers = append(recs[i].Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
	}
	c, cancel := ctx()
	defer cancel()
	results := cl.ProduceSync(c, recs...)
	for i, res := range results {
		if res.Err != nil {
			return fmt.Errorf("%s record %d: %w", codecName, i, res.Err)
		}
		if err := common.Expect(fmt.Sprintf("%s record %d offset", codecName, i), firstOffset+int64(i), res.Record.Offset); err != nil {
			return err
		}
	}
	return nil
}

func toRecord(r *kgo.Record) common.Record {
	out := common.Record{Key: r.Key, Value: r.Value, TimestampMs: r.Timestamp.UnixMilli()}
	for _, h := range r.Headers {
		out.Headers = append(out.Headers, common.Header{Key: h.Key, Value: h.Value})
	}
	return out
}

// pollUntil fetches until count records arrived or the timeout passed.
func pollUntil(cl *kgo.Client, count int) ([]*kgo.Record, error) {
	c, cancel := ctx()
	defer cancel()
	var got []*kgo.Record
	for len(got) < count {
		fs := cl.PollFetches(c)
		if c.Err() != nil {
			return nil, common.Mismatch{What: fmt.Sprintf("expected %d records within %v, got %d", count, common.Timeout, len(got))}
		}
		for _, e := range fs.Errors() {
			return nil, fmt.Errorf("fetch %s/%d: %w", e.Topic, e.Partition, e.Err)
		}
		got = append(got, fs.Records()...)
	}
	return got, nil
}

func verifyAll(got []*kgo.Record, expected []common.Record, first int64) error {
	for i, r := range got {
		off := first + int64(i)
		if err := common.Expect(fmt.Sprintf("offset of record %d", i), off, r.Offset); err != nil {
			return err
		}
		if err := common.Verify(off, expected[off], toRecord(r), r.Attrs.TimestampType() == 0); err != nil {
			return err
		}
	}
	return nil
}

// consumeFrom reads count records from a new client that starts at the given offset.
func consumeFrom(a common.Args, at kgo.Offset, count int) ([]*kgo.Record, error) {
	cl, err := newClient(a, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{a.Topic: {0: at}}))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return pollUntil(cl, count)
}

func checkConsume(a common.Args, adm *kadm.Client, expected []common.Record) error {
	n := int64(len(expected))
	c, cancel := ctx()
	defer cancel()
	start, err := adm.ListStartOffsets(c, a.Topic)
	if err != nil {
		return err
	}
	end, err := adm.ListEndOffsets(c, a.Topic)
	if err != nil {
		return err
	}
	s, _ := start.Lookup(a.Topic, 0)
	e, _ := end.Lookup(a.Topic, 0)
	if err := common.Expect("start and end offsets", [2]int64{0, n}, [2]int64{s.Offset, e.Offset}); err != nil {
		return err
	}
	got, err := consumeFrom(a, kgo.NewOffset().AtStart(), len(expected))
	if err != nil {
		return err
	}
	if err := verifyAll(got, expected, 0); err != nil {
		return err
	}
	if got, err = consumeFrom(a, kgo.NewOffset().At(25), 1); err != nil {
		return err
	}
	if err := verifyAll(got[:1], expected, 25); err != nil {
		return err
	}
	return checkTimeSeeks(a, adm, expected)
}

func checkTimeSeeks(a common.Args, adm *kadm.Client, expected []common.Record) error {
	const target = 33
	ts := expected[target].TimestampMs
	c, cancel := ctx()
	defer cancel()
	listed, err := adm.ListOffsetsAfterMilli(c, ts-500, a.Topic)
	if err != nil {
		return err
	}
	lo, _ := listed.Lookup(a.Topic, 0)
	if err := common.Expect("ListOffsetsAfterMilli (between two records)", [2]int64{target, ts}, [2]int64{lo.Offset, lo.Timestamp}); err != nil {
		return err
	}
	got, err := consumeFrom(a, kgo.NewOffset().AfterMilli(ts), 1)
	if err != nil {
		return err
	}
	if err := verifyAll(got[:1], expected, target); err != nil {
		return err
	}
	return checkSeekToEnd(a, int64(len(expected)))
}

// checkSeekToEnd starts a consumer at the end, then produces one record: only it may arrive.
func checkSeekToEnd(a common.Args, endOffset int64) error {
	cl, err := newClient(a, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{a.Topic: {0: kgo.NewOffset().AtEnd()}}))
	if err != nil {
		return err
	}
	defer cl.Close()
	c, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if fs := cl.PollFetches(c); len(fs.Records()) > 0 {
		return common.Mismatch{What: fmt.Sprintf("records after seeking to the end: first at offset %d", fs.Records()[0].Offset)}
	}
	extra := common.Record{Key: []byte("k"), Value: []byte("after-end"), TimestampMs: common.BaseTimestampMs() + 3_000_000}
	if err := produce(a, []common.Record{extra}, "none", endOffset); err != nil {
		return err
	}
	got, err := pollUntil(cl, 1)
	if err != nil {
		return err
	}
	return common.Expect("record after seeking to the end", [2]any{endOffset, "after-end"}, [2]any{got[0].Offset, string(got[0].Value)})
}

func run(a common.Args) error {
	cl, err := newClient(a)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	s := common.Sections{Client: client}
	expected := common.ExpectedRecords(common.BaseTimestampMs(), len(common.Codecs)*common.RecordsPerCodec)
	produced := s.Run("produce (5 codecs)", func() error {
		if err := createTopic(adm, a.Topic, 1, nil); err != nil {
			return err
		}
		return common.ProduceAll(expected, func(r []common.Record, codec string, first int64) error {
			return produce(a, r, codec, first)
		})
	})
	if produced {
		s.Run("consume from the start, at an offset, after a timestamp, at the end", func() error {
			return checkConsume(a, adm, expected)
		})
	}
	s.Run("admin: create with configs, list, describe configs, delete", func() error { return checkAdmin(adm, a.Topic) })
	return s.Err()
}

func runGroups(a common.Args) error {
	admCl, err := newClient(a)
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if err := createTopic(adm, a.Topic, 1, nil); err != nil {
		return err
	}
	expected := common.ExpectedRecords(common.BaseTimestampMs(), 2*common.RecordsPerCodec)
	if err := produce(a, expected[:common.RecordsPerCodec], "none", 0); err != nil {
		return err
	}
	if err := produce(a, expected[common.RecordsPerCodec:], "snappy", common.RecordsPerCodec); err != nil {
		return err
	}
	group := a.Topic + "-group"
	half := len(expected) / 2
	if err := groupConsume(a, group, expected, 0, len(expected), int64(half)); err != nil {
		return err
	}
	if err := expectGroupOffset(adm, group, a.Topic, int64(half)); err != nil {
		return err
	}
	if err := groupConsume(a, group, expected, half, len(expected)-half, int64(len(expected))); err != nil {
		return err
	}
	if err := expectGroupOffset(adm, group, a.Topic, int64(len(expected))); err != nil {
		return err
	}
	fmt.Printf("%s: consumer group subscribe, commit and resume OK on %s\n", client, a.Topic)
	return nil
}

// groupConsume joins the group, expects count records starting at first, and commits commitAt.
func groupConsume(a common.Args, group string, expected []common.Record, first, count int, commitAt int64) error {
	cl, err := newClient(a, kgo.ConsumerGroup(group), kgo.ConsumeTopics(a.Topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	got, err := pollUntil(cl, count)
	if err != nil {
		return err
	}
	if err := verifyAll(got, expected, int64(first)); err != nil {
		return err
	}
	c, cancel := ctx()
	defer cancel()
	offsets := map[string]map[int32]kgo.EpochOffset{a.Topic: {0: {Epoch: -1, Offset: commitAt}}}
	var commitErr error
	cl.CommitOffsetsSync(c, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		commitErr = err
		if err == nil {
			commitErr = commitResponseError(resp)
		}
	})
	return commitErr
}

func expectGroupOffset(adm *kadm.Client, group, topic string, want int64) error {
	c, cancel := ctx()
	defer cancel()
	offsets, err := adm.FetchOffsets(c, group)
	if err != nil {
		return err
	}
	o, ok := offsets.Lookup(topic, 0)
	if !ok {
		return common.Mismatch{What: "no committed offset for " + topic}
	}
	return common.Expect("committed offset of "+group, want, o.At)
}

func commitResponseError(resp *kmsg.OffsetCommitResponse) error {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("commit %s/%d: %w", t.Topic, p.Partition, err)
			}
		}
	}
	return nil
}
