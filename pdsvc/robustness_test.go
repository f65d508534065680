package pdsvc_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/pingcap/kvproto/pkg/pdpb"
)

// TestEveryUnaryMethodSurvivesEmptyAndHeaderOnlyRequests calls each unary
// pdpb.PD method with an empty request and with a request that carries only
// a valid header, before and after bootstrap. A handler that panicked would
// take the server down, so the test ends by checking that it still answers.
func TestEveryUnaryMethodSurvivesEmptyAndHeaderOnlyRequests(t *testing.T) {
	p := startPD(t)
	callAll := func() {
		called := 0
		client := reflect.ValueOf(p.raw)
		for i := range client.NumMethod() {
			method := client.Type().Method(i)
			mt := client.Method(i).Type()
			// Unary methods: (ctx, *Req, ...grpc.CallOption) (*Resp, error).
			if mt.NumIn() != 3 || mt.NumOut() != 2 || !mt.IsVariadic() || mt.In(1).Kind() != reflect.Ptr {
				continue
			}
			for _, withHeader := range []bool{false, true} {
				req := reflect.New(mt.In(1).Elem())
				if withHeader {
					setHeader(req, p.header())
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5e9)
				out := client.Method(i).Call([]reflect.Value{reflect.ValueOf(ctx), req})
				cancel()
				called++
				if err, _ := out[1].Interface().(error); err != nil && strings.Contains(err.Error(), "Unavailable") {
					t.Fatalf("%s: server unavailable: %v", method.Name, err)
				}
			}
		}
		if called < 60 {
			t.Fatalf("only %d calls made; the method filter is wrong", called)
		}
	}
	callAll()
	p.bootstrap("127.0.0.1:20160")
	callAll()
	if id := p.allocID(); id == 0 {
		t.Fatal("server stopped allocating ids")
	}
}

// setHeader sets a request's Header field when it is a *pdpb.RequestHeader.
func setHeader(req reflect.Value, header *pdpb.RequestHeader) {
	field := req.Elem().FieldByName("Header")
	if field.IsValid() && field.Type() == reflect.TypeOf(header) {
		field.Set(reflect.ValueOf(header))
	}
}
