package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSizeParsesTiKVsReadableSizes: sizes are read as TiKV writes them,
// every K a 1024; malformed ones are refused.
func TestSizeParsesTiKVsReadableSizes(t *testing.T) {
	for text, want := range map[string]uint64{
		"96MiB": 96 << 20, "96MB": 96 << 20, "32KiB": 32 << 10, "1GB": 1 << 30, "512B": 512, "7": 7, " 4 KiB ": 4 << 10,
	} {
		var s size
		if err := s.UnmarshalText([]byte(text)); err != nil || s.bytes != want {
			t.Errorf("size %q = %d, %v; want %d", text, s.bytes, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1MiB", "1.5MiB", "12XB", "99999999999999999999GiB"} {
		var s size
		if err := s.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("size %q parsed as %d, want an error", bad, s.bytes)
		}
	}
}

// TestRaftstoreSettingsFromTOML: the [raftstore] and [coprocessor]
// settings reach the store's configuration.
func TestRaftstoreSettingsFromTOML(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tikv.toml")
	toml := "[raftstore]\nraft-base-tick-interval = \"100ms\"\nraft-log-gc-threshold = 8\nsplit-region-check-tick-interval = \"200ms\"\n" +
		"[coprocessor]\nregion-split-size = \"256KiB\"\nregion-max-keys = 1000\n"
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig([]string{"--config", path})
	if err != nil {
		t.Fatal(err)
	}
	rs, cop := cfg.Raftstore, cfg.Coprocessor
	if rs.RaftBaseTickInterval.Duration != 100*time.Millisecond || rs.RaftLogGCThreshold != 8 ||
		rs.SplitCheckTickInterval.Duration != 200*time.Millisecond || cop.RegionSplitSize.bytes != 256<<10 || cop.RegionMaxKeys != 1000 {
		t.Fatalf("parsed %+v %+v", rs, cop)
	}
	if err := os.WriteFile(path, []byte("[coprocessor]\nregion-split-size = \"big\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := parseConfig([]string{"--config", path}); err == nil {
		t.Fatal("a malformed size was accepted")
	}
}
