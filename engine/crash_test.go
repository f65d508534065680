package engine

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// crashDirEnv tells a re-executed test binary to run the crash writer in
// the given directory.
const crashDirEnv = "TINYKV_ENGINE_CRASH_DIR"

// TestHelperCrashWriter is not a test: TestCrashRecovery runs it in a child
// process, which writes until it is killed. Concurrent writers (so group
// commit is exercised) each commit a batch putting one key into CfDefault and
// CfWrite, then print "ack <key>" once Write has returned.
func TestHelperCrashWriter(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashRecovery")
	}
	e, err := Open(dir, diskOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var stdoutMu sync.Mutex
	var wg sync.WaitGroup
	for writer := range 4 {
		wg.Go(func() {
			wb := NewWriteBatch()
			for i := 0; ; i++ {
				key := fmt.Appendf(nil, "w%d-%08d", writer, i)
				wb.Reset()
				wb.Put(CfDefault, key, key)
				wb.Put(CfWrite, key, key)
				if err := e.Write(wb); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				stdoutMu.Lock()
				fmt.Printf("ack %s\n", key)
				stdoutMu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestCrashRecovery SIGKILLs a writing child process and checks that every
// write it acknowledged survives, and that no batch survived in part.
func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestHelperCrashWriter$")
	child.Env = append(os.Environ(), crashDirEnv+"="+dir)
	child.Stderr = os.Stderr
	stdout, err := child.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, child.Start())

	acked := make(chan []string, 1)
	go func() { acked <- readAcks(stdout) }()
	// Kill at a moment when writes are surely in flight.
	time.Sleep(1500 * time.Millisecond)
	require.NoError(t, child.Process.Kill())
	ackedKeys := <-acked
	_ = child.Wait()
	require.NotEmpty(t, ackedKeys, "the child acknowledged nothing")

	e := openTestEngine(t, dir, diskOptions())
	for _, key := range ackedKeys {
		for _, cf := range []CF{CfDefault, CfWrite} {
			value, err := e.Get(cf, []byte(key))
			require.NoError(t, err, "acknowledged key %q lost from %s", key, cf)
			require.Equal(t, key, string(value))
		}
	}
	snap := e.Snapshot()
	defer snap.Close()
	keyOnly := IterOptions{KeyOnly: true}
	require.Equal(t, collect(t, snap, CfDefault, keyOnly, nil), collect(t, snap, CfWrite, keyOnly, nil),
		"a batch survived in one CF only")
	t.Logf("%d acknowledged writes before SIGKILL, %d present after recovery",
		len(ackedKeys), len(collect(t, snap, CfWrite, keyOnly, nil)))
}

// readAcks returns the keys of the complete "ack <key>" lines in r; a line
// cut short by the kill does not count.
func readAcks(r io.Reader) []string {
	var keys []string
	reader := bufio.NewReader(r)
	for {
		line, err := reader.ReadString('\n')
		if err != nil {
			return keys
		}
		if key, ok := strings.CutPrefix(line, "ack "); ok {
			keys = append(keys, strings.TrimSuffix(key, "\n"))
		}
	}
}
