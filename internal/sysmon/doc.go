// Package sysmon keeps the Go runtime's system monitor thread (sysmon) from
// parking, for servers that are busy in short bursts, as the store under a
// steady stream of small requests is.
//
// # Why
//
// Sysmon parks whenever every P is idle, and the first system call after
// that wakes it and resets its polling interval to 20 µs; it backs off
// towards 10 ms only after 50 quiet polls. A store serving a steady stream
// of requests below saturation goes completely idle thousands of times a
// second, so its sysmon spends most of its life polling every 20 µs. On
// virtual machines where a thread's sleep and wake-up are expensive that is
// a large share of the process's CPU. Measured on a 2-vCPU PVM guest with
// TiDB's update-by-index load on one store (16 connections): the store's
// sysmon thread used 10–11% of a core, a fifth of the store's CPU, with
// 32,000–46,000 wake-ups every 10 s; kept from parking it used 2.7% of a
// core with 9,000, and the load ran faster in 8 of 9 alternating 12 s
// windows (−2% to +29%, median +14%).
//
// # How
//
// The runtime has no setting for sysmon's polling, but it never parks
// sysmon while GODEBUG's schedtrace is set (sysmon must stay awake to print
// the scheduler trace on time). GODEBUG is read once, when the program
// starts, so KeepAwake executes the program again, in place (same process,
// same ID and name, same arguments and open files), with schedtrace set to its
// longest period, 2^31−1 ms (about 24.8 days). The price: a one-line
// scheduler trace on standard error once per period (and one at start on
// a machine that has been up for longer than that), and a
// scheduler dump before the goroutine traces when the program dies of a
// fatal error. Without parking, an idle sysmon polls every 10 ms.
//
// A GODEBUG that already sets schedtrace is left alone, so schedtrace=0
// restores the runtime's default behaviour.
package sysmon
