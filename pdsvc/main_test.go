package pdsvc_test

import (
	"os"
	"testing"

	"github.com/pingcap/log"
	"go.uber.org/zap"
)

// TestMain silences the stock PD client's global logger; failures are
// reported through the tests themselves.
func TestMain(m *testing.M) {
	log.ReplaceGlobals(zap.NewNop(), &log.ZapProperties{Level: zap.NewAtomicLevel()})
	os.Exit(m.Run())
}
