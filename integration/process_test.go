package integration

import (
	"bytes"
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/pingcap/log"
	"go.uber.org/zap"
)

func silenceClientLogs() {
	log.ReplaceGlobals(zap.NewNop(), &log.ZapProperties{Level: zap.NewAtomicLevel()})
}

// process is a running binary whose output is kept for failure reports.
type process struct {
	t   testing.TB
	cmd *exec.Cmd
	out bytes.Buffer
	// exited is closed once the process has been waited for; exitErr is
	// its result.
	exited  chan struct{}
	exitErr error
}

func startProcess(t testing.TB, name string, args ...string) *process {
	t.Helper()
	p := &process{t: t, cmd: exec.Command(binary(name), args...), exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	require(t, p.cmd.Start(), "start "+name)
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out.String())
		}
	})
	return p
}

// kill sends SIGKILL and waits for the process to go.
func (p *process) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM and returns the exit error.
func (p *process) stop() error {
	require(p.t, p.cmd.Process.Signal(syscall.SIGTERM), "signal")
	select {
	case <-p.exited:
		return p.exitErr
	case <-time.After(30 * time.Second):
		p.t.Fatalf("process did not stop within 30 s")
		return nil
	}
}

// waitHTTP polls url until it answers 200.
func waitHTTP(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within 60 s", url)
}
