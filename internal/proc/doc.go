// Package proc runs binaries as child processes for the commands that start
// a local cluster (tinykv-playground, tinykv-bench, tinykv-sqlbench): it
// starts a binary in its own process group with its output in a log file,
// waits until it serves, stops it with SIGTERM and then SIGKILL after a
// grace period, and finds free loopback addresses to serve on.
//
// A child in its own process group does not get the terminal's Ctrl-C: the
// command that started it catches the signal (Main does that for a command)
// and stops its children itself, in the order it needs (TiDB, then the
// store, then PD).
package proc
