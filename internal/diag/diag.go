// Package diag serves the diagnostics gRPC service (diagnosticspb) that
// TiDB asks every TiKV and PD node for information_schema.cluster_load,
// cluster_hardware, cluster_systeminfo and cluster_log. System and load
// figures come from TiDB's own implementation (github.com/pingcap/sysutil),
// which also searches the process's log file; that works because the
// processes log in the unified format (internal/logutil).
package diag

import (
	"github.com/pingcap/kvproto/pkg/diagnosticspb"
	"github.com/pingcap/sysutil"
	"google.golang.org/grpc"
)

// Register adds the diagnostics service to s. logFile is the file the
// process logs to; when it is empty (logs go to stderr) a log search finds
// nothing.
func Register(s *grpc.Server, logFile string) {
	diagnosticspb.RegisterDiagnosticsServer(s, &server{DiagnosticsServer: sysutil.NewDiagnosticsServer(logFile), logFile: logFile})
}

type server struct {
	*sysutil.DiagnosticsServer
	logFile string
}

// SearchLog streams the log lines the request selects (time range, levels,
// regular expressions).
func (s *server) SearchLog(req *diagnosticspb.SearchLogRequest, stream diagnosticspb.Diagnostics_SearchLogServer) error {
	if s.logFile == "" {
		return nil
	}
	return s.DiagnosticsServer.SearchLog(req, stream)
}
