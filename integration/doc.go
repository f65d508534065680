// Package integration holds black-box tests that build and start the real
// TinyKV binaries on loopback and drive them with the stock clients
// (the PD client, client-go, a MySQL driver against TiDB).
package integration
