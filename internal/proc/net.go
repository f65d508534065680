package proc

import (
	"context"
	"fmt"
	"net"
	"net/http"
)

// HTTPReady returns a readiness check, for WaitReady, that url answers
// 200 OK.
func HTTPReady(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		resp, err := GetOK(ctx, url)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
}

// GetOK sends GET url and returns the response if it is 200 OK; the caller
// closes its body.
func GetOK(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp, nil
}

// FreeAddrs returns n distinct loopback host:port addresses that were free
// a moment ago.
func FreeAddrs(n int) ([]string, error) {
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	addrs := make([]string, n)
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		listeners = append(listeners, l)
		addrs[i] = l.Addr().String()
	}
	return addrs, nil
}
