// Package common holds the test data and checks shared by the Go client drivers, the same data
// as the Java and Python drivers: 50 records, 10 per codec, with keys (one null per codec),
// values (one large per codec), headers (with a duplicate key and an empty value) and explicit
// CreateTime timestamps.
package common

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Codecs in the order they are produced: records [10n, 10n+10) use Codecs[n].
var Codecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

const (
	RecordsPerCodec = 10
	Timeout         = 30 * time.Second
)

// Header is one record header; a nil Value is a null header value.
type Header struct {
	Key   string
	Value []byte
}

// Record is what the test sends and expects back at one offset.
type Record struct {
	Key         []byte // nil means a null key
	Value       []byte
	Headers     []Header
	TimestampMs int64
}

// Mismatch is a difference between what was sent and what came back.
type Mismatch struct{ What string }

func (m Mismatch) Error() string { return m.What }

// Args are the command-line arguments every driver takes.
type Args struct {
	Bootstrap string
	Topic     string
	Groups    bool
}

// ParseArgs reads `[--groups] [--bootstrap HOST:PORT] TOPIC`, with $BOOTSTRAP as the default.
func ParseArgs(client string) Args {
	def := os.Getenv("BOOTSTRAP")
	if def == "" {
		def = "127.0.0.1:9092"
	}
	var a Args
	flag.StringVar(&a.Bootstrap, "bootstrap", def, "bootstrap server")
	flag.BoolVar(&a.Groups, "groups", false, "run only the consumer-group check")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintf(os.Stderr, "usage: %s [--groups] [--bootstrap HOST:PORT] TOPIC\n", client)
		os.Exit(2)
	}
	a.Topic = flag.Arg(0)
	return a
}

// Main runs the chosen check and turns its outcome into one line and an exit code.
func Main(client string, run, runGroups func(Args) error) {
	a := ParseArgs(client)
	f := run
	if a.Groups {
		f = runGroups
	}
	if err := f(a); err != nil {
		var kind = "ERROR"
		if _, ok := err.(Mismatch); ok {
			kind = "MISMATCH"
		}
		fmt.Fprintf(os.Stderr, "%s: %s: %v\n", client, kind, err)
		os.Exit(1)
	}
	fmt.Printf("%s: OK\n", client)
}

// BaseTimestampMs is whole seconds an hour ago: inside the broker's timestamp acceptance window.
func BaseTimestampMs() int64 { return (time.Now().Unix() - 3600) * 1000 }

// Expected returns the record at offset i.
func Expected(i int, baseMs int64) Record {
	var key []byte
	if i%RecordsPerCodec != 0 {
		key = []byte("key-" + strconv.Itoa(i))
	}
	value := fmt.Sprintf("value-%d-é✓", i)
	if i%RecordsPerCodec == 5 {
		value = fmt.Sprintf("value-%d-", i) + strings.Repeat("x", 20000)
	}
	return Record{
		Key:   key,
		Value: []byte(value),
		Headers: []Header{
			{"h-index", []byte(strconv.Itoa(i))},
			{"dup", []byte("first")},
			{"dup", []byte("second")},
			{"empty", []byte{}},
		},
		TimestampMs: baseMs + int64(i)*1000,
	}
}

// ExpectedRecords returns records [0, n).
func ExpectedRecords(baseMs int64, n int) []Record {
	out := make([]Record, n)
	for i := range out {
		out[i] = Expected(i, baseMs)
	}
	return out
}

// Expect returns a Mismatch when want and got differ.
func Expect(what string, want, got any) error {
	if !reflect.DeepEqual(want, got) {
		return Mismatch{fmt.Sprintf("%s: expected %v, got %v", what, show(want), show(got))}
	}
	return nil
}

func show(v any) string {
	if b, ok := v.([]byte); ok {
		if b == nil {
			return "null"
		}
		if len(b) > 60 {
			return fmt.Sprintf("%q... (%d bytes)", b[:60], len(b))
		}
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%#v", v)
}

// Verify compares one consumed record with the expected one. Null and empty are kept apart.
func Verify(offset int64, want, got Record, createTime bool) error {
	what := fmt.Sprintf("record at offset %d", offset)
	if (want.Key == nil) != (got.Key == nil) || !bytes.Equal(want.Key, got.Key) {
		return Mismatch{fmt.Sprintf("%s key: expected %s, got %s", what, show(want.Key), show(got.Key))}
	}
	if !bytes.Equal(want.Value, got.Value) {
		return Mismatch{fmt.Sprintf("%s value: expected %s, got %s", what, show(want.Value), show(got.Value))}
	}
	if !createTime {
		return Mismatch{what + ": timestamp type is not CreateTime"}
	}
	if err := Expect(what+" timestamp", want.TimestampMs, got.TimestampMs); err != nil {
		return err
	}
	if err := Expect(what+" header count", len(want.Headers), len(got.Headers)); err != nil {
		return err
	}
	for h := range want.Headers {
		w, g := want.Headers[h], got.Headers[h]
		if w.Key != g.Key || !bytes.Equal(w.Value, g.Value) || (w.Value == nil) != (g.Value == nil) {
			return Mismatch{fmt.Sprintf("%s header %d: expected %s=%s, got %s=%s", what, h, w.Key, show(w.Value), g.Key, show(g.Value))}
		}
	}
	return nil
}

// Sections runs independent parts of a check so that one failure does not hide the others.
type Sections struct {
	Client string
	failed []string
}

// Run runs one section, prints its outcome and reports whether it passed.
func (s *Sections) Run(name string, f func() error) bool {
	if err := f(); err != nil {
		fmt.Printf("%s: %s: FAILED: %v\n", s.Client, name, err)
		s.failed = append(s.failed, name)
		return false
	}
	fmt.Printf("%s: %s: OK\n", s.Client, name)
	return true
}

// Err is a Mismatch naming the failed sections, or nil.
func (s *Sections) Err() error {
	if len(s.failed) == 0 {
		return nil
	}
	return Mismatch{"failed: " + strings.Join(s.failed, "; ")}
}

// ProduceAll produces the expected records, codec by codec, with the driver's produce function.
func ProduceAll(expected []Record, produce func(records []Record, codec string, firstOffset int64) error) error {
	for n, name := range Codecs {
		first := n * RecordsPerCodec
		if err := produce(expected[first:first+RecordsPerCodec], name, int64(first)); err != nil {
			return err
		}
	}
	return nil
}

// WaitUntil polls check until it is true or Timeout passes.
func WaitUntil(what string, check func() (bool, error)) error {
	deadline := time.Now().Add(Timeout)
	for {
		ok, err := check()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return Mismatch{"timed out waiting for " + what}
		}
		time.Sleep(100 * time.Millisecond)
	}
}
