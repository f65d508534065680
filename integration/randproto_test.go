package integration

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
)

// protoFiller fills kvproto request structs (gogo-generated) with random
// values through reflection: scalars from edge values, keys from a small
// pool so that requests meet each other's keys and locks, and nested
// messages, repeated fields and oneofs down to a bounded depth.
type protoFiller struct {
	rand *rand.Rand
	keys [][]byte
}

// fillerMaxDepth bounds message nesting; deeper pointers stay nil.
const fillerMaxDepth = 4

func newProtoFiller(r *rand.Rand) *protoFiller {
	long := make([]byte, 300)
	for i := range long {
		long[i] = byte(r.IntN(256))
	}
	rowKey := []byte("t\x80\x00\x00\x00\x00\x00\x00\x01_r\x80\x00\x00\x00\x00\x00\x00\x01")
	return &protoFiller{rand: r, keys: [][]byte{
		nil, {}, []byte("a"), []byte("k1"), []byte("k2"), []byte("k3"), rowKey, {0xff, 0xff}, long,
	}}
}

// message returns a new *T for a pointer-to-struct type, filled.
func (f *protoFiller) message(ptrType reflect.Type) reflect.Value {
	v := reflect.New(ptrType.Elem())
	f.fillStruct(v, 0)
	return v
}

// fillStruct fills the exported fields of the struct ptr points to.
func (f *protoFiller) fillStruct(ptr reflect.Value, depth int) {
	s := ptr.Elem()
	for i := range s.NumField() {
		field := s.Type().Field(i)
		if !field.IsExported() || strings.HasPrefix(field.Name, "XXX_") || f.rand.IntN(4) == 0 {
			continue
		}
		if field.Type.Kind() == reflect.Interface {
			f.fillOneof(ptr, s.Field(i), depth)
			continue
		}
		f.fillValue(s.Field(i), depth)
	}
}

// fillOneof sets a oneof field to one of its wrapper types, filled.
func (f *protoFiller) fillOneof(msg, field reflect.Value, depth int) {
	wrappersMethod := msg.MethodByName("XXX_OneofWrappers")
	if !wrappersMethod.IsValid() {
		return
	}
	var choices []reflect.Type
	for _, w := range wrappersMethod.Call(nil)[0].Interface().([]any) {
		if t := reflect.TypeOf(w); t.Implements(field.Type()) {
			choices = append(choices, t)
		}
	}
	if len(choices) == 0 {
		return
	}
	wrapper := reflect.New(choices[f.rand.IntN(len(choices))].Elem())
	f.fillStruct(wrapper, depth+1)
	field.Set(wrapper)
}

func (f *protoFiller) fillValue(v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(f.rand.IntN(2) == 0)
	case reflect.Int32, reflect.Int64, reflect.Int:
		v.SetInt(f.int(v))
	case reflect.Uint32, reflect.Uint64, reflect.Uint8:
		v.SetUint(f.uint()) // truncated to the field's width
	case reflect.Float32, reflect.Float64:
		v.SetFloat([]float64{0, 1, -1, math.NaN(), math.Inf(1)}[f.rand.IntN(5)])
	case reflect.String:
		v.SetString([]string{"", "default", "lock", "write", "raft", "x\x00y"}[f.rand.IntN(6)])
	case reflect.Slice:
		f.fillSlice(v, depth)
	case reflect.Pointer:
		if v.Type().Elem().Kind() == reflect.Struct && depth < fillerMaxDepth {
			p := reflect.New(v.Type().Elem())
			f.fillStruct(p, depth+1)
			v.Set(p)
		}
	case reflect.Struct:
		f.fillStruct(v.Addr(), depth+1)
	}
}

func (f *protoFiller) fillSlice(v reflect.Value, depth int) {
	if v.Type().Elem().Kind() == reflect.Uint8 {
		v.SetBytes(f.keys[f.rand.IntN(len(f.keys))])
		return
	}
	if depth >= fillerMaxDepth {
		return
	}
	n := f.rand.IntN(4)
	s := reflect.MakeSlice(v.Type(), n, n)
	for i := range n {
		f.fillValue(s.Index(i), depth+1)
	}
	v.Set(s)
}

// int draws a signed value: an enum's small values (and one out of
// range) or an edge integer, truncated to the field's width by SetInt.
func (f *protoFiller) int(v reflect.Value) int64 {
	if v.Type().PkgPath() != "" { // a named type: an enum
		return []int64{0, 1, 2, 3, 4, 99}[f.rand.IntN(6)]
	}
	return []int64{0, 1, -1, 2, 100, 3000, 1 << 40, math.MaxInt64, math.MinInt64}[f.rand.IntN(9)]
}

// uint draws an unsigned edge value: small counts and timestamps, a
// timestamp far in the future and the next one, the maximum.
func (f *protoFiller) uint() uint64 {
	future := uint64(1) << 62
	return []uint64{0, 1, 2, 10, 1000, future, future + 1, math.MaxUint64}[f.rand.IntN(8)]
}
