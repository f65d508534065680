// Package testutil holds helpers shared by TinyKV's tests: free loopback
// ports and seeded randomness that reports its seed.
package testutil
