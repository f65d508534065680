package pdsvc_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/pdpb"
	"google.golang.org/grpc/health/grpc_health_v1"
)

// BenchmarkTSO measures timestamps/s through the stock PD client with 1, 16
// and 64 concurrent callers, with the p99 latency of one GetTS call. The
// peer in the same run is the loopback floor: the gRPC health check on the
// same server with the same concurrency (its calls/s and p99 are reported
// alongside, so tso/health is the overhead of the TSO path).
func BenchmarkTSO(b *testing.B) {
	p := startPD(b)
	cli := p.stockClient()
	health := grpc_health_v1.NewHealthClient(p.conn)
	for _, callers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("stock-client/callers=%d", callers), func(b *testing.B) {
			runConcurrent(b, callers, func() error {
				_, _, err := cli.GetTS(ctxT(b))
				return err
			})
		})
		b.Run(fmt.Sprintf("health-floor/callers=%d", callers), func(b *testing.B) {
			runConcurrent(b, callers, func() error {
				_, err := health.Check(ctxT(b), &grpc_health_v1.HealthCheckRequest{})
				return err
			})
		})
	}
}

// BenchmarkTSOStreamBatch measures the server's latency for one TSO batch of
// 100 on a raw stream, request to response.
func BenchmarkTSOStreamBatch(b *testing.B) {
	p := startPD(b)
	stream, err := p.raw.Tso(ctxT(b))
	if err != nil {
		b.Fatal(err)
	}
	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := stream.Send(&pdpb.TsoRequest{Header: p.header(), Count: 100}); err != nil {
			b.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			b.Fatal(err)
		}
		latencies = append(latencies, time.Since(start))
	}
	b.StopTimer()
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "ts/s")
	b.ReportMetric(float64(percentile(latencies, 0.99).Microseconds()), "p99-µs/batch")
}

// runConcurrent runs b.N calls of op spread over callers goroutines and
// reports calls/s and the p99 call latency.
func runConcurrent(b *testing.B, callers int, op func() error) {
	perCaller := make([][]time.Duration, callers)
	var wg sync.WaitGroup
	b.ResetTimer()
	for c := range callers {
		n := b.N / callers
		if c < b.N%callers {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				start := time.Now()
				if err := op(); err != nil {
					b.Error(err)
					return
				}
				perCaller[c] = append(perCaller[c], time.Since(start))
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(perCaller...)
	b.ReportMetric(float64(len(all))/b.Elapsed().Seconds(), "calls/s")
	b.ReportMetric(float64(percentile(all, 0.99).Microseconds()), "p99-µs")
}

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[int(q*float64(len(d)-1))]
}
