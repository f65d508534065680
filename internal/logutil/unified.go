package logutil

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// TimeLayout is the timestamp of TiDB's, TiKV's and PD's unified log
// format, which TiDB's information_schema.cluster_log parses.
const TimeLayout = "2006/01/02 15:04:05.000 -07:00"

// unifiedHandler writes records in the unified log format of TiKV and PD,
// one line each:
//
//	[2026/11/24 01:55:41.908 +00:00] [INFO] [node.go:212] ["store started"] [store-id=1] [addr=127.0.0.1:20160]
//
// The message and every value are quoted (Go syntax) when they are empty
// or hold spaces, quotes, brackets, '=', or non-printable characters.
// Attributes of groups are named group.key.
type unifiedHandler struct {
	level slog.Leveler
	out   *lockedWriter
	// attrs are the preformatted attributes of WithAttrs, each " [k=v]".
	attrs []byte
	// prefix is the group path of attributes added later, "" or "g1.g2.".
	prefix string
}

// lockedWriter serialises the lines of a handler and its derivations.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewUnifiedHandler returns a handler writing the unified log format to w
// at level and above.
func NewUnifiedHandler(w io.Writer, level slog.Leveler) slog.Handler {
	return &unifiedHandler{level: level, out: &lockedWriter{w: w}}
}

func (h *unifiedHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *unifiedHandler) Handle(_ context.Context, r slog.Record) error {
	buf := make([]byte, 0, 256)
	buf = append(buf, '[')
	buf = r.Time.AppendFormat(buf, TimeLayout)
	buf = append(buf, "] ["...)
	buf = append(buf, levelName(r.Level)...)
	buf = append(buf, "] ["...)
	buf = append(buf, source(r.PC)...)
	buf = append(buf, "] ["...)
	buf = appendQuoted(buf, r.Message)
	buf = append(buf, ']')
	buf = append(buf, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		buf = appendAttr(buf, h.prefix, a)
		return true
	})
	buf = append(buf, '\n')
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	_, err := h.out.w.Write(buf)
	return err
}

func (h *unifiedHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	next := *h
	next.attrs = slices.Clone(h.attrs)
	for _, a := range attrs {
		next.attrs = appendAttr(next.attrs, h.prefix, a)
	}
	return &next
}

func (h *unifiedHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	next := *h
	next.prefix = h.prefix + name + "."
	return &next
}

// levelName is the level as TiKV writes it: DEBUG, INFO, WARN or ERROR.
func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < slog.LevelWarn:
		return "INFO"
	case l < slog.LevelError:
		return "WARN"
	default:
		return "ERROR"
	}
}

// source is file:line of the logging call, or "<unknown>".
func source(pc uintptr) string {
	if pc == 0 {
		return "<unknown>"
	}
	frame, _ := runtime.CallersFrames([]uintptr{pc}).Next()
	if frame.File == "" {
		return "<unknown>"
	}
	return filepath.Base(frame.File) + ":" + strconv.Itoa(frame.Line)
}

// appendAttr appends " [prefix+key=value]", flattening groups; empty
// attributes are skipped, as slog asks.
func appendAttr(buf []byte, prefix string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return buf
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			buf = appendAttr(buf, prefix, ga)
		}
		return buf
	}
	buf = append(buf, " ["...)
	buf = appendQuoted(buf, prefix+a.Key)
	buf = append(buf, '=')
	buf = appendQuoted(buf, valueString(a.Value))
	return append(buf, ']')
}

func valueString(v slog.Value) string {
	if v.Kind() == slog.KindTime {
		return v.Time().Format(TimeLayout)
	}
	return v.String()
}

// appendQuoted appends s, quoted if it needs to be.
func appendQuoted(buf []byte, s string) []byte {
	if needsQuoting(s) {
		return strconv.AppendQuote(buf, s)
	}
	return append(buf, s...)
}

func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) || strings.ContainsRune(`"=[]`, r) {
			return true
		}
	}
	return false
}
