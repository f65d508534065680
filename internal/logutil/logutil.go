// Package logutil builds the one structured logger each TinyKV process uses.
package logutil

import (
	"fmt"
	"io"
	"log/slog"
	"os"
)

// New returns a logger writing TiKV's unified log format (see
// NewUnifiedHandler) to file (stderr when empty) at level ("debug", "info",
// "warn" or "error"; empty means info), and a function that closes the
// file.
func New(file, level string) (*slog.Logger, func(), error) {
	var lvl slog.Level
	if level != "" {
		if err := lvl.UnmarshalText([]byte(level)); err != nil {
			return nil, nil, fmt.Errorf("log level %q: %w", level, err)
		}
	}
	var out io.Writer = os.Stderr
	closeFn := func() {}
	if file != "" {
		f, err := os.OpenFile(file, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("open log file: %w", err)
		}
		out, closeFn = f, func() { f.Close() }
	}
	return slog.New(NewUnifiedHandler(out, lvl)), closeFn, nil
}

// Config is the [log] section of TiKV's and PD's TOML files.
type Config struct {
	Level string `toml:"level"`
	File  struct {
		Filename string `toml:"filename"`
	} `toml:"file"`
}

// Open builds the logger the section describes.
func (c Config) Open() (*slog.Logger, func(), error) {
	return New(c.File.Filename, c.Level)
}
