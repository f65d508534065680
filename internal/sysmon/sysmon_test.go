package sysmon

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestWithSchedtrace(t *testing.T) {
	for _, tc := range []struct {
		godebug, want string
		changed       bool
	}{
		{"", "schedtrace=2147483647", true},
		{"gctrace=1", "gctrace=1,schedtrace=2147483647", true},
		{"gctrace=1,madvdontneed=0", "gctrace=1,madvdontneed=0,schedtrace=2147483647", true},
		{"schedtrace=0", "schedtrace=0", false},
		{"gctrace=1,schedtrace=1000", "gctrace=1,schedtrace=1000", false},
		// The runtime does not trim spaces, so neither do we: this one
		// sets " schedtrace", which is no setting at all.
		{"gctrace=1, schedtrace=1000", "gctrace=1, schedtrace=1000,schedtrace=2147483647", true},
		{"scheddetail=1", "scheddetail=1,schedtrace=2147483647", true},
	} {
		got, changed := withSchedtrace(tc.godebug)
		if got != tc.want || changed != tc.changed {
			t.Errorf("withSchedtrace(%q) = %q, %v; want %q, %v", tc.godebug, got, changed, tc.want, tc.changed)
		}
	}
}

func TestWithoutGodebug(t *testing.T) {
	got := withoutGodebug([]string{"A=1", "GODEBUG=x=1", "GODEBUGX=2", "B="})
	if strings.Join(got, " ") != "A=1 GODEBUGX=2 B=" {
		t.Errorf("withoutGodebug kept %q", got)
	}
}

// helperEnv marks the test binary run by runHelper: it calls KeepAwake and
// prints its process ID, its process name and GODEBUG.
const helperEnv = "SYSMON_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		if err := KeepAwake(); err != nil {
			os.Stdout.WriteString("error: " + err.Error() + "\n")
			os.Exit(1)
		}
		comm, err := os.ReadFile("/proc/self/comm")
		if err != nil {
			os.Stdout.WriteString("error: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString(strconv.Itoa(os.Getpid()) + " " + strings.TrimSpace(string(comm)) + " " +
			os.Getenv("GODEBUG") + "\n")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runHelper runs the test binary as a helper with the given GODEBUG. It
// returns the helper's report and the start of the report it wants: the
// process ID the helper started with and its name (the kernel keeps 15
// bytes of the file's name).
func runHelper(t *testing.T, godebug string) (report, sameProcess string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(withoutGodebug(os.Environ()), helperEnv+"=1", "GODEBUG="+godebug)
	// Standard error may hold a scheduler trace line (see the package
	// doc), so the report is read from standard output alone.
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v, output %q, standard error %q", err, out.String(), errOut.String())
	}
	name := filepath.Base(os.Args[0])
	return strings.TrimSpace(out.String()), strconv.Itoa(cmd.Process.Pid) + " " + name[:min(len(name), 15)]
}

func TestKeepAwakeExecutesTheProgramAgainInPlace(t *testing.T) {
	report, sameProcess := runHelper(t, "gctrace=0")
	if want := sameProcess + " gctrace=0," + schedtraceSetting; report != want {
		t.Fatalf("helper reported %q, want %q (same process and name, schedtrace added)", report, want)
	}
}

func TestKeepAwakeLeavesASchedtraceAlone(t *testing.T) {
	report, sameProcess := runHelper(t, "schedtrace=0")
	if want := sameProcess + " schedtrace=0"; report != want {
		t.Fatalf("helper reported %q, want %q", report, want)
	}
}
