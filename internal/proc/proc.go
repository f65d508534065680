package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// pollInterval is how long WaitReady waits after a failed check.
const pollInterval = 100 * time.Millisecond

// Child is a started binary in its own process group.
type Child struct {
	name    string // the binary's file name
	cmd     *exec.Cmd
	logPath string        // where stdout and stderr go; "" for this process's stderr
	exited  chan struct{} // closed once the process has been waited for
	err     error         // the exit status, once exited is closed
}

// Start starts binDir/name with args in its own process group, with its
// stdout and stderr in a file created at logPath, or on this process's
// stderr when logPath is empty.
func Start(binDir, name, logPath string, args ...string) (*Child, error) {
	c := &Child{name: name, cmd: exec.Command(filepath.Join(binDir, name), args...),
		logPath: logPath, exited: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = os.Stderr, os.Stderr
	if logPath != "" {
		logFile, err := os.Create(logPath)
		if err != nil {
			return nil, fmt.Errorf("%s log: %w", name, err)
		}
		defer logFile.Close() // the child holds its own descriptor
		c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	}
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// Pid is the child's process id, which is also its process group id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Exited is closed once the child has exited.
func (c *Child) Exited() <-chan struct{} { return c.exited }

// WaitReady calls check until it succeeds, and fails when the child exits
// first, ctx ends or timeout passes. check gets a context that ends then
// too.
func (c *Child) WaitReady(ctx context.Context, timeout time.Duration, check func(context.Context) error) error {
	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// last is the latest failure that was an answer, not the deadline
	// cutting a check short: that is the one worth reporting.
	var last error
	for {
		err := check(waitCtx)
		if err == nil {
			return nil
		}
		if last == nil || waitCtx.Err() == nil {
			last = err
		}
		select {
		case <-c.exited:
			return fmt.Errorf("%s exited (%v) before serving; %s", c.name, c.err, c.output())
		case <-waitCtx.Done():
			return fmt.Errorf("%s not serving (waited up to %s): %w; last check: %v; %s",
				c.name, timeout, waitCtx.Err(), last, c.output())
		case <-time.After(pollInterval):
		}
	}
}

// Stop sends SIGTERM to the child's process group, then SIGKILL if the
// child is still running after grace, and waits for it to exit. It reports
// an unclean exit, also one that happened before Stop was called.
func (c *Child) Stop(grace time.Duration) error {
	if err := c.signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop %s: %w", c.name, err)
	}
	select {
	case <-c.exited:
		if c.err != nil {
			return fmt.Errorf("%s exited: %w; %s", c.name, c.err, c.output())
		}
		return nil
	case <-time.After(grace):
	}
	if err := c.signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s: %w", c.name, err)
	}
	<-c.exited
	return fmt.Errorf("%s ignored SIGTERM for %s and was killed; %s", c.name, grace, c.output())
}

// signal sends sig to the child's process group, unless the child has
// already exited (its id may then belong to another process).
func (c *Child) signal(sig syscall.Signal) error {
	select {
	case <-c.exited:
		return nil
	default:
	}
	if err := syscall.Kill(-c.Pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// output says where the child's output went, for error messages.
func (c *Child) output() string {
	if c.logPath == "" {
		return "output on stderr"
	}
	return "log in " + c.logPath
}
