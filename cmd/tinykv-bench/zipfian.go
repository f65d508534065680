package main

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
)

// zipfianConstant is YCSB's default skew (theta).
const zipfianConstant = 0.99

// keyChooser picks a record number in [0, n) for one operation.
type keyChooser interface {
	next(r *rand.Rand) uint64
}

// uniformChooser picks every record with the same probability.
type uniformChooser struct{ n uint64 }

func (u uniformChooser) next(r *rand.Rand) uint64 { return r.Uint64N(u.n) }

// zipfian draws from a Zipf distribution over [0, n) where item 0 is the
// most popular, by the rejection-free method of Gray et al., "Quickly
// Generating Billion-Record Synthetic Databases" (SIGMOD 1994), which YCSB
// also uses. It holds only constants, so goroutines may share one value and
// each pass its own source of randomness.
type zipfian struct {
	n                   uint64
	alpha, eta          float64
	zetaN, halfPowTheta float64
}

func newZipfian(n uint64, theta float64) zipfian {
	zetaN := zeta(n, theta)
	zeta2 := zeta(2, theta)
	return zipfian{
		n:            n,
		alpha:        1 / (1 - theta),
		eta:          (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta2/zetaN),
		zetaN:        zetaN,
		halfPowTheta: math.Pow(0.5, theta),
	}
}

// zeta is the generalized harmonic number: the sum of 1/i^theta for i in
// [1, n].
func zeta(n uint64, theta float64) float64 {
	sum := 0.0
	for i := uint64(1); i <= n; i++ {
		sum += 1 / math.Pow(float64(i), theta)
	}
	return sum
}

func (z zipfian) next(r *rand.Rand) uint64 {
	u := r.Float64()
	uz := u * z.zetaN
	if uz < 1 {
		return 0
	}
	if uz < 1+z.halfPowTheta {
		return min(1, z.n-1)
	}
	v := uint64(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	return min(v, z.n-1)
}

// scrambledZipfian is a zipfian whose popular items are spread over the
// key space by hashing, as YCSB's request distribution "zipfian" does, so
// that the hot keys are not all neighbours.
type scrambledZipfian struct{ z zipfian }

func newScrambledZipfian(n uint64) scrambledZipfian {
	return scrambledZipfian{z: newZipfian(n, zipfianConstant)}
}

func (s scrambledZipfian) next(r *rand.Rand) uint64 {
	return fnv64(s.z.next(r)) % s.z.n
}

// fnv64 is the 64-bit FNV-1a hash of v's eight little-endian bytes.
func fnv64(v uint64) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	h := uint64(offset)
	for _, c := range b {
		h ^= uint64(c)
		h *= prime
	}
	return h
}
