package logutil

import (
	"bytes"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestUnifiedFormat(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(NewUnifiedHandler(&out, slog.LevelInfo))
	log.Debug("hidden")
	log.Info("store started", "store-id", 1, "addr", "127.0.0.1:20160")
	log.With("component", "etcd").WithGroup("raft").Warn("slow apply", "took", 1500*time.Millisecond,
		slog.Group("peer", "id", 7), "err", errors.New(`disk "full" [sda]`), "empty", "")
	log.Error("plain")

	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines (debug filtered), got %d:\n%s", len(lines), out.String())
	}
	prefix := regexp.MustCompile(`^\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d\d:\d\d\] \[(\w+)\] \[unified_test\.go:\d+\] `)
	wantLevels := []string{"INFO", "WARN", "ERROR"}
	wantRests := []string{
		`["store started"] [store-id=1] [addr=127.0.0.1:20160]`,
		`["slow apply"] [component=etcd] [raft.took=1.5s] [raft.peer.id=7] [raft.err="disk \"full\" [sda]"] [raft.empty=""]`,
		`[plain]`,
	}
	for i, line := range lines {
		m := prefix.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %d lacks the time, level and source: %s", i, line)
		}
		if m[1] != wantLevels[i] {
			t.Errorf("line %d level %s, want %s", i, m[1], wantLevels[i])
		}
		if rest := line[len(m[0]):]; rest != wantRests[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, rest, wantRests[i])
		}
	}
}

// TestUnifiedTimeParses: the timestamp reads back with the layout TiDB's
// log search uses, to the millisecond.
func TestUnifiedTimeParses(t *testing.T) {
	var out bytes.Buffer
	before := time.Now().Truncate(time.Millisecond)
	slog.New(NewUnifiedHandler(&out, slog.LevelInfo)).Info("x")
	stamp := out.String()[1:strings.IndexByte(out.String(), ']')]
	got, err := time.Parse(TimeLayout, stamp)
	if err != nil {
		t.Fatalf("parse %q: %v", stamp, err)
	}
	if got.Before(before) || got.After(time.Now()) {
		t.Fatalf("logged time %v outside [%v, now]", got, before)
	}
}
