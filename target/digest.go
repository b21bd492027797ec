package target

import (
	"context"
	"fmt"
	"math/big"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
)

// digestExpr is the SQL twin of proto.RowHash: md5 over "N" or
// "V<octets>:<text>" per column, first 8 bytes as a signed bigint. concat()
// prints a value with its type's output function, as COPY does (a cast to
// text would not: boolean::text is 'true', inet::text adds /32).
func digestExpr(cols []string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		q := schema.Quote(c)
		parts[i] = fmt.Sprintf("CASE WHEN %[1]s IS NULL THEN 'N' ELSE 'V' || octet_length(concat(%[1]s)) || ':' || concat(%[1]s) END", q)
	}
	return "('x' || left(md5(concat(" + strings.Join(parts, ", ") + ")), 16))::bit(64)::bigint"
}

// Digest computes the row count and order-independent digest of the rows of
// a target table that satisfy where (with args), over cols in load order.
func Digest(ctx context.Context, pool *pgxpool.Pool, t schema.Name, cols []string, where string, args ...any) (proto.Digest, error) {
	q := fmt.Sprintf("SELECT count(*), coalesce(sum(%s), 0)::text FROM %s WHERE %s", digestExpr(cols), schema.QuoteName(t), where)
	var rows int64
	var sum string
	if err := pool.QueryRow(ctx, q, args...).Scan(&rows, &sum); err != nil {
		return proto.Digest{}, fmt.Errorf("digest %s: %w", t, err)
	}
	v, ok := new(big.Int).SetString(sum, 10)
	if !ok {
		return proto.Digest{}, fmt.Errorf("digest %s: bad sum %q", t, sum)
	}
	mod := new(big.Int).Lsh(big.NewInt(1), 64)
	v.Mod(v, mod) // Go's Mod is Euclidean: the result is in [0, 2^64)
	return proto.Digest{Sum: v.Uint64(), Rows: rows}, nil
}
