package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tinykv/tinykv/internal/proc"
)

// startProfiles starts CPU profiles of sys's processes that cover most of
// workload w's --duration, when --profile is set. The returned group is
// done when every profile is written; a failed profile is logged and
// does not fail the run.
func startProfiles(ctx context.Context, cfg config, sys system, w string, round uint64) *sync.WaitGroup {
	var wg sync.WaitGroup
	if cfg.profileDir == "" {
		return &wg
	}
	seconds := int((cfg.duration - time.Second) / time.Second)
	for process, addr := range sys.statusAddrs {
		path := filepath.Join(cfg.profileDir, fmt.Sprintf("%d-%s-%s-%s.pprof", round+1, w, sys.name, process))
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, seconds)
		wg.Go(func() {
			if err := fetchProfile(ctx, url, path); err != nil {
				slog.Warn("profile failed", "system", sys.name, "process", process, "err", err)
			}
		})
	}
	return &wg
}

// fetchProfile saves what url answers to path.
func fetchProfile(ctx context.Context, url, path string) error {
	resp, err := proc.GetOK(ctx, url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
