// Command member is one franz-go consumer-group member for tests/compat/group-churn.py.
//
//	member [--bootstrap HOST:PORT] [--balancer range|roundrobin|sticky|cooperative-sticky]
//	       [--delay-ms MS] GROUP TOPIC
//
// It prints `PARTITION OFFSET VALUE` for every record, prints `committing`, commits each poll batch synchronously and
// prints `committed PARTITION NEXT_OFFSET` for every partition the broker accepted (or
// `commit-failed ...`). Rebalances are held off between a poll and its commit
// (BlockRebalanceOnPoll), as franz-go recommends for manual commits. SIGTERM: the batch in hand is
// finished and committed, the client leaves the group, closes and prints `closed`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	bootstrap := flag.String("bootstrap", envOr("BOOTSTRAP", "127.0.0.1:9092"), "broker host:port")
	balancer := flag.String("balancer", "cooperative-sticky", "range|roundrobin|sticky|cooperative-sticky")
	delayMs := flag.Int("delay-ms", 0, "sleep after each record (ms)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: member [flags] GROUP TOPIC")
		os.Exit(2)
	}
	group, topic := flag.Arg(0), flag.Arg(1)
	var b kgo.GroupBalancer
	switch *balancer {
	case "range":
		b = kgo.RangeBalancer()
	case "roundrobin":
		b = kgo.RoundRobinBalancer()
	case "sticky":
		b = kgo.StickyBalancer()
	case "cooperative-sticky":
		b = kgo.CooperativeStickyBalancer()
	default:
		fmt.Fprintln(os.Stderr, "unknown balancer", *balancer)
		os.Exit(2)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(*bootstrap),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(b),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
	fmt.Printf("start franz %s pid %d\n", *balancer, os.Getpid())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	stopped := false
	for !stopped {
		select {
		case <-sigs:
			stopped = true
			continue
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fetches := cl.PollRecords(ctx, 50)
		cancel()
		offsets := map[int32]kgo.EpochOffset{}
		fetches.EachRecord(func(r *kgo.Record) {
			fmt.Printf("%d %d %s\n", r.Partition, r.Offset, r.Value)
			offsets[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
			if *delayMs > 0 {
				time.Sleep(time.Duration(*delayMs) * time.Millisecond)
			}
		})
		fetches.EachError(func(t string, p int32, err error) {
			if err != context.DeadlineExceeded && err != context.Canceled {
				fmt.Printf("error %s %d %v\n", t, p, err)
			}
		})
		if len(offsets) > 0 {
			commit(cl, topic, offsets)
		}
		cl.AllowRebalance()
	}
	// Close leaves the group (LeaveGroup) after the last commit above.
	cl.Close()
	fmt.Println("closed")
}

func commit(cl *kgo.Client, topic string, offsets map[int32]kgo.EpochOffset) {
	// Announced first: a member killed during the commit may or may not have committed.
	fmt.Println("committing")
	done := make(chan struct{})
	cl.CommitOffsetsSync(context.Background(), map[string]map[int32]kgo.EpochOffset{topic: offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			defer close(done)
			if err != nil {
				fmt.Printf("commit-failed %v\n", err)
				return
			}
			var lines []string
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
						lines = append(lines, fmt.Sprintf("commit-failed %d %v", p.Partition, e))
					} else {
						lines = append(lines, fmt.Sprintf("committed %d %d", p.Partition, offsets[p.Partition].Offset))
					}
				}
			}
			sort.Strings(lines)
			for _, l := range lines {
				fmt.Println(l)
			}
		})
	<-done
}

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}
