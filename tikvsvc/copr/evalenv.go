package copr

import (
	"sync"
	"time"

	"github.com/pingcap/tidb/pkg/expression/exprstatic"
	"github.com/pingcap/tidb/pkg/parser/charset"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/sessionctx/stmtctx"
	"github.com/pingcap/tidb/pkg/types"
	"github.com/pingcap/tidb/pkg/util/collate"
	"github.com/pingcap/tipb/go-tipb"
)

// evalEnv is the statement context a request is evaluated in: TiDB's flags,
// SQL mode and time zone, shared by expressions and aggregate functions,
// which also collect their warnings in it.
type evalEnv struct {
	sc      *stmtctx.StatementContext
	exprCtx *exprstatic.ExprContext
	evalCtx *exprstatic.EvalContext
	loc     *time.Location
}

// envOptions are the request settings that shape an evalEnv.
type envOptions struct {
	flags     uint64
	loc       *time.Location
	sqlMode   *uint64
	divInc    *uint32
	maxPacket *uint64
}

func newEvalEnv(o envOptions) *evalEnv {
	sc := stmtctx.NewStmtCtx()
	sc.InitFromPBFlagAndTz(o.flags, o.loc)
	opts := []exprstatic.EvalCtxOption{
		exprstatic.WithWarnHandler(sc.WarnHandler),
		exprstatic.WithTypeFlags(sc.TypeFlags()),
		exprstatic.WithErrLevelMap(sc.ErrLevels()),
		exprstatic.WithLocation(o.loc),
	}
	if o.sqlMode != nil {
		opts = append(opts, exprstatic.WithSQLMode(mysql.SQLMode(*o.sqlMode)))
	}
	if o.divInc != nil {
		opts = append(opts, exprstatic.WithDivPrecisionIncrement(int(*o.divInc)))
	}
	if o.maxPacket != nil {
		opts = append(opts, exprstatic.WithMaxAllowedPacket(*o.maxPacket))
	}
	evalCtx := exprstatic.NewEvalContext(opts...)
	return &evalEnv{
		sc:      sc,
		exprCtx: exprstatic.NewExprContext(exprstatic.WithEvalCtx(evalCtx)),
		evalCtx: evalCtx,
		loc:     o.loc,
	}
}

// dagEnv builds the evalEnv of a DAG request.
func dagEnv(dag *tipb.DAGRequest) *evalEnv {
	return newEvalEnv(envOptions{
		flags:     dag.GetFlags(),
		loc:       requestLocation(dag.GetTimeZoneName(), dag.GetTimeZoneOffset()),
		sqlMode:   dag.SqlMode,
		divInc:    dag.DivPrecisionIncrement,
		maxPacket: dag.MaxAllowedPacket,
	})
}

// warnings returns the warnings collected so far as tipb errors.
func (e *evalEnv) warnings() []*tipb.Error {
	warns := e.sc.GetWarnings()
	if len(warns) == 0 {
		return nil
	}
	out := make([]*tipb.Error, 0, len(warns))
	for _, w := range warns {
		out = append(out, toPBError(w.Err))
	}
	return out
}

// locations caches time zones loaded by name.
var locations sync.Map // name -> *time.Location

// requestLocation resolves the time zone TiDB sends: by name when it has
// one, else as a fixed offset in seconds east of UTC. A name this host's
// time zone database does not know falls back to the offset, which TiDB
// computed for the current time.
func requestLocation(name string, offset int64) *time.Location {
	switch name {
	case "":
		return time.FixedZone("UTC", int(offset))
	case "System":
		return time.Local
	}
	if loc, ok := locations.Load(name); ok {
		return loc.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.FixedZone(name, int(offset))
	}
	locations.Store(name, loc)
	return loc
}

// columnFieldType converts a scanned column's description to a field type.
func columnFieldType(col *tipb.ColumnInfo) *types.FieldType {
	collation := collate.ProtoToCollation(col.GetCollation())
	ft := types.NewFieldType(byte(col.GetTp()))
	ft.SetFlag(uint(col.GetFlag()))
	ft.SetFlen(int(col.GetColumnLen()))
	ft.SetDecimal(int(col.GetDecimal()))
	ft.SetElems(col.GetElems())
	ft.SetCollate(collation)
	if c, err := charset.GetCollationByName(collation); err == nil {
		ft.SetCharset(c.CharsetName)
	}
	return ft
}

func columnFieldTypes(cols []*tipb.ColumnInfo) []*types.FieldType {
	fts := make([]*types.FieldType, len(cols))
	for i, col := range cols {
		fts[i] = columnFieldType(col)
	}
	return fts
}
