package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// operation is one request of a phase: a read or a write of one record.
type operation struct {
	write  bool
	keynum uint64
}

// picker returns the operation with sequence number seq (counted from 0
// over all clients of a phase), drawing any randomness from r.
type picker func(r *rand.Rand, seq uint64) operation

// phase is one measured step, run in turn against every system.
type phase struct {
	workload string // load, put, get, a, b or c
	dist     string // uniform, zipfian, or "-" when keys are not drawn
	round    int    // 0 for the load, then 1 to --rounds
	ops      uint64
	pick     picker
}

// readProportions are the YCSB core workloads' shares of reads; the rest
// are updates of whole records.
var readProportions = map[string]float64{"a": 0.50, "b": 0.95, "c": 1.00}

// Workload and distribution names accepted by --workloads and --dists.
var (
	workloadNames = []string{"put", "get", "a", "b", "c"}
	distNames     = []string{"uniform", "zipfian"}
)

// buildPlan lists the phases of a run: the load of --records records, then
// --rounds rounds of the selected workloads in the order of workloadNames.
func buildPlan(cfg config) []phase {
	plan := []phase{{workload: "load", dist: "-", ops: cfg.records, pick: sequential(0)}}
	for round := 1; round <= cfg.rounds; round++ {
		plan = append(plan, roundPhases(cfg, round)...)
	}
	return plan
}

// roundPhases is one round of the selected workloads. Each round's put
// phase inserts its own fresh records, after the loaded ones.
func roundPhases(cfg config, round int) []phase {
	var phases []phase
	for _, w := range workloadNames {
		if !slices.Contains(cfg.workloads, w) {
			continue
		}
		switch w {
		case "put":
			fresh := cfg.records + uint64(round-1)*cfg.ops
			phases = append(phases, phase{workload: w, dist: "-", ops: cfg.ops, pick: sequential(fresh)})
		case "get":
			phases = append(phases, phase{workload: w, dist: "uniform", ops: cfg.ops, pick: mix(1, uniformChooser{cfg.records})})
		default:
			phases = append(phases, mixPhases(w, cfg)...)
		}
	}
	for i := range phases {
		phases[i].round = round
	}
	return phases
}

// mixPhases returns one phase of the YCSB core workload w per selected
// distribution.
func mixPhases(w string, cfg config) []phase {
	var phases []phase
	for _, d := range distNames {
		if slices.Contains(cfg.dists, d) {
			phases = append(phases, phase{workload: w, dist: d, ops: cfg.ops,
				pick: mix(readProportions[w], chooser(d, cfg.records))})
		}
	}
	return phases
}

func chooser(dist string, records uint64) keyChooser {
	if dist == "zipfian" {
		return newScrambledZipfian(records)
	}
	return uniformChooser{records}
}

// sequential writes records first, first+1, ... once each: the load phase
// and the inserts of fresh keys.
func sequential(first uint64) picker {
	return func(_ *rand.Rand, seq uint64) operation {
		return operation{write: true, keynum: first + seq}
	}
}

// mix reads with probability readProportion and otherwise updates, on a key
// drawn from keys.
func mix(readProportion float64, keys keyChooser) picker {
	return func(r *rand.Rand, _ uint64) operation {
		return operation{write: r.Float64() >= readProportion, keynum: keys.next(r)}
	}
}

// keyspace names records as YCSB does: "user" and a zero-padded number,
// the record number itself (ordered) or its hash (hashed, YCSB's default
// insert order, which scatters neighbouring records), after a per-system
// prefix so that systems sharing a store do not share keys.
type keyspace struct {
	prefix string
	hashed bool
}

func (k keyspace) key(keynum uint64) []byte {
	if k.hashed {
		keynum = fnv64(keynum) >> 1 // 63 bits: at most 19 decimal digits
	}
	return fmt.Appendf(nil, "%suser%019d", k.prefix, keynum)
}

// randomValue returns size random lowercase letters.
func randomValue(r *rand.Rand, size int) []byte {
	v := make([]byte, size)
	for i := range v {
		v[i] = 'a' + byte(r.IntN(26))
	}
	return v
}
