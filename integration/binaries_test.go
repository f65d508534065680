package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binDir holds the binaries built once for the whole test run.
var binDir string

// binaries are the commands the tests start.
var binaries = []string{
	"github.com/tinykv/tinykv/cmd/tinyscheduler-server",
	"github.com/tinykv/tinykv/cmd/tinykv-server",
	"github.com/tinykv/tinykv/cmd/tinykv-playground",
	"github.com/pingcap/tidb/cmd/tidb-server",
}

func TestMain(m *testing.M) {
	os.Exit(runWithBinaries(m))
}

func runWithBinaries(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tinykv-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	build := exec.Command("go", append([]string{"build", "-o", dir + string(filepath.Separator)}, binaries...)...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build binaries:", err)
		return 1
	}
	binDir = dir
	silenceClientLogs()
	return m.Run()
}

func binary(name string) string { return filepath.Join(binDir, name) }

// hostPort formats a loopback address.
func hostPort(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// require fails the test at once on err.
func require(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
