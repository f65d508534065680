package sysmon

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
)

// schedtraceSetting is the GODEBUG setting KeepAwake adds: the longest
// scheduler trace period the runtime accepts, math.MaxInt32 milliseconds.
const schedtraceSetting = "schedtrace=2147483647"

// KeepAwake executes the running program again with schedtrace added to
// GODEBUG, unless GODEBUG sets schedtrace already or the system is not
// Linux. Call it first thing in main: what ran before it runs again. It
// returns only when it did not execute the program: nil when there was
// nothing to do, an error when the exec failed (the program then goes on
// with the runtime's default sysmon).
func KeepAwake() error {
	godebug, changed := withSchedtrace(os.Getenv("GODEBUG"))
	if !changed || runtime.GOOS != "linux" {
		return nil
	}
	// The program's own path, not /proc/self/exe: the kernel names the
	// process after the file executed, and ps, pgrep and top show that name.
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the program to execute again: %w", err)
	}
	env := append(withoutGodebug(os.Environ()), "GODEBUG="+godebug)
	err = syscall.Exec(exe, os.Args, env)
	return fmt.Errorf("execute %s again with GODEBUG=%s: %w", exe, godebug, err)
}

// withSchedtrace returns godebug with schedtraceSetting added, and whether
// it added it: a godebug that sets schedtrace already is returned as is.
func withSchedtrace(godebug string) (string, bool) {
	if godebug == "" {
		return schedtraceSetting, true
	}
	for _, setting := range strings.Split(godebug, ",") {
		if key, _, _ := strings.Cut(setting, "="); key == "schedtrace" {
			return godebug, false
		}
	}
	return godebug + "," + schedtraceSetting, true
}

// withoutGodebug returns env without its GODEBUG entries.
func withoutGodebug(env []string) []string {
	kept := make([]string, 0, len(env))
	for _, entry := range env {
		if !strings.HasPrefix(entry, "GODEBUG=") {
			kept = append(kept, entry)
		}
	}
	return kept
}
