package mssql

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/caravan-db/caravan/schema"
)

// Computed columns. By default their values are copied as SQL Server
// computed them, into a plain column. With --computed generated, caravan
// translates the simple expressions to GENERATED ALWAYS AS (...) STORED:
// integer and decimal arithmetic, + on strings (||), ISNULL, COALESCE,
// CAST and CONVERT between simple types, column references. It accepts an
// expression only when PostgreSQL computes the same value for every row
// SQL Server can hold; anything else (a function it does not know, a
// float, a char(n) column whose padding || would drop, a decimal result
// past 38 digits, which SQL Server rounds, a cast that could truncate or
// round differently) is reported and copied as values.

// ComputedCopy and ComputedGenerated are the --computed choices.
const (
	ComputedCopy      = "copy"
	ComputedGenerated = "generated"
)

// valueClass is what the translator knows of an expression's values.
type valueClass int

const (
	classInt valueClass = iota // tinyint, smallint, int, bigint
	classDec                   // decimal/numeric
	classStr                   // varchar, nvarchar (not char/nchar: padding)
)

// typed is a translated expression with its class; prec and scale are
// its decimal precision and scale (integers as decimal(p,0) the way SQL
// Server converts them), length its string length in characters (-1: max).
type typed struct {
	sql         string
	class       valueClass
	prec, scale int
	length      int
	unicode     bool
	literal     bool // a string or number literal
	tiny        bool // tinyint: unsigned in SQL Server, smallint on the target
}

type computedParser struct {
	toks   []token
	pos    int
	cols   map[string]*columnInfo
	policy schema.NamePolicy
}

// translateComputed returns the PostgreSQL expression of a computed
// column's definition, or why it is not translated.
func translateComputed(def string, cols map[string]*columnInfo, policy schema.NamePolicy) (string, error) {
	toks, err := tokenize(stripParens(def))
	if err != nil {
		return "", err
	}
	p := &computedParser{toks: toks, cols: cols, policy: policy}
	e, err := p.expr()
	if err != nil {
		return "", err
	}
	if p.pos != len(p.toks) {
		return "", fmt.Errorf("unexpected %q", p.toks[p.pos].text)
	}
	return e.sql, nil
}

func (p *computedParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos].text
	}
	return ""
}

func (p *computedParser) expect(s string) error {
	if p.pos >= len(p.toks) || !strings.EqualFold(p.toks[p.pos].text, s) || p.toks[p.pos].kind == tokString {
		return fmt.Errorf("expected %q at %q", s, p.peek())
	}
	p.pos++
	return nil
}

func (p *computedParser) expr() (typed, error) {
	left, err := p.term()
	if err != nil {
		return left, err
	}
	for p.peek() == "+" || p.peek() == "-" {
		op := p.peek()
		p.pos++
		right, err := p.term()
		if err != nil {
			return left, err
		}
		if left, err = arith(left, op, right); err != nil {
			return left, err
		}
	}
	return left, nil
}

func (p *computedParser) term() (typed, error) {
	left, err := p.unary()
	if err != nil {
		return left, err
	}
	for p.peek() == "*" || p.peek() == "/" || p.peek() == "%" {
		op := p.peek()
		p.pos++
		right, err := p.unary()
		if err != nil {
			return left, err
		}
		if left, err = arith(left, op, right); err != nil {
			return left, err
		}
	}
	return left, nil
}

func (p *computedParser) unary() (typed, error) {
	if p.peek() == "-" {
		p.pos++
		e, err := p.unary()
		if err != nil {
			return e, err
		}
		if e.class == classStr || e.tiny {
			return e, fmt.Errorf("unary minus on a string or a tinyint")
		}
		e.sql, e.literal = "(-"+e.sql+")", false
		return e, nil
	}
	return p.primary()
}

// arith combines two operands with SQL Server's result types: both sides
// integers, or exact decimals whose result stays within 38 digits (past
// them SQL Server rounds the scale away, PostgreSQL does not); + on two
// strings is concatenation.
func arith(l typed, op string, r typed) (typed, error) {
	if l.class == classStr || r.class == classStr {
		if op != "+" || l.class != classStr || r.class != classStr {
			return l, fmt.Errorf("%s between a string and a number", op)
		}
		n := -1
		if l.length >= 0 && r.length >= 0 {
			n = l.length + r.length
			if n > 4000 { // past 8000 bytes SQL Server truncates
				return l, fmt.Errorf("concatenation longer than 4000 characters")
			}
		}
		return typed{sql: l.sql + " || " + r.sql, class: classStr, length: n, unicode: l.unicode || r.unicode}, nil
	}
	out := typed{sql: l.sql + " " + op + " " + r.sql, class: classInt}
	if l.tiny && r.tiny {
		return l, fmt.Errorf("tinyint %s tinyint: a tinyint in SQL Server (past 255 an error), a smallint in PostgreSQL", op)
	}
	if l.class == classInt && r.class == classInt {
		out.prec = max(l.prec, r.prec)
		return out, nil
	}
	if op == "/" || op == "%" {
		return l, fmt.Errorf("%s on decimals: SQL Server's result scale differs from PostgreSQL's", op)
	}
	out.class = classDec
	switch op {
	case "*":
		out.prec, out.scale = l.prec+r.prec+1, l.scale+r.scale
	default:
		out.scale = max(l.scale, r.scale)
		out.prec = out.scale + max(l.prec-l.scale, r.prec-r.scale) + 1
	}
	if out.prec > 38 {
		return l, fmt.Errorf("decimal result of %d digits: SQL Server rounds it, PostgreSQL does not", out.prec)
	}
	return out, nil
}

func (p *computedParser) primary() (typed, error) {
	if p.pos >= len(p.toks) {
		return typed{}, fmt.Errorf("unexpected end of expression")
	}
	tk := p.toks[p.pos]
	switch tk.kind {
	case tokNumber:
		p.pos++
		return numberLiteral(tk.text)
	case tokString:
		p.pos++
		return stringLiteral(tk.text)
	case tokOp:
		if tk.text != "(" {
			return typed{}, fmt.Errorf("unexpected %q", tk.text)
		}
		p.pos++
		e, err := p.expr()
		if err != nil {
			return e, err
		}
		if err := p.expect(")"); err != nil {
			return e, err
		}
		if !e.literal {
			e.sql = "(" + e.sql + ")"
		}
		return e, nil
	}
	p.pos++
	if !tk.bracketed && p.peek() == "(" {
		return p.call(strings.ToLower(tk.text))
	}
	c := (&exprTranslator{cols: p.cols}).column(tk.text)
	if c == nil {
		return typed{}, fmt.Errorf("%q is not a column of the table", tk.text)
	}
	e, err := classOf(c.Type)
	if err != nil {
		return e, fmt.Errorf("column %q: %w", c.Name, err)
	}
	e.sql = schema.Quote(p.policy.Ident(c.Name))
	return e, nil
}

// classOf is what the translator knows of a column's values.
func classOf(t sqlType) (typed, error) {
	switch t.Name {
	case "tinyint":
		return typed{class: classInt, prec: 3, tiny: true}, nil
	case "smallint":
		return typed{class: classInt, prec: 5}, nil
	case "int":
		return typed{class: classInt, prec: 10}, nil
	case "bigint":
		return typed{class: classInt, prec: 19}, nil
	case "decimal", "numeric":
		return typed{class: classDec, prec: t.Precision, scale: t.Scale}, nil
	case "varchar", "nvarchar":
		return typed{class: classStr, length: t.Length, unicode: t.Name == "nvarchar"}, nil
	}
	return typed{}, fmt.Errorf("type %s is not translated", t)
}

func numberLiteral(s string) (typed, error) {
	if strings.ContainsAny(s, "eE") {
		return typed{}, fmt.Errorf("float literal %s", s)
	}
	if !strings.Contains(s, ".") {
		// SQL Server types an integer literal past int as decimal
		// (as decimal(digits, 0) in decimal arithmetic)
		if v, err := strconv.ParseInt(s, 10, 32); err == nil {
			return typed{sql: strconv.FormatInt(v, 10), class: classInt, prec: max(len(strings.TrimLeft(s, "0")), 1), literal: true}, nil
		}
		return typed{}, fmt.Errorf("integer literal %s past int", s)
	}
	whole, frac, _ := strings.Cut(s, ".")
	whole = strings.TrimLeft(whole, "0")
	p := len(whole) + len(frac)
	if p == 0 || p > 38 {
		return typed{}, fmt.Errorf("decimal literal %s", s)
	}
	return typed{sql: s, class: classDec, prec: max(p, 1), scale: len(frac), literal: true}, nil
}

// stringLiteral drops the N prefix: N'x' is bpchar in PostgreSQL, whose
// trailing spaces || would drop.
func stringLiteral(s string) (typed, error) {
	body := s[1 : len(s)-1]
	for i := 0; i < len(body); i++ {
		if body[i] >= 0x80 {
			return typed{}, fmt.Errorf("non-ASCII string literal %s", s)
		}
	}
	n := len(strings.ReplaceAll(body, "''", "'"))
	return typed{sql: s, class: classStr, length: n, literal: true}, nil
}

func (p *computedParser) call(fn string) (typed, error) {
	if err := p.expect("("); err != nil {
		return typed{}, err
	}
	var out typed
	var err error
	switch fn {
	case "isnull":
		out, err = p.isnull()
	case "coalesce":
		out, err = p.coalesce()
	case "cast":
		var e typed
		if e, err = p.expr(); err == nil {
			if err = p.expect("AS"); err == nil {
				out, err = p.castTo(e)
			}
		}
	case "convert":
		var to typed
		if to, err = p.typeName(); err == nil {
			if err = p.expect(","); err == nil {
				var e typed
				if e, err = p.expr(); err == nil {
					if p.peek() == "," {
						// SQL Server stores CONVERT(type, x, (0)): style 0 is
						// the default, any other formats differently
						p.pos++
						if st, serr := p.expr(); serr != nil || st.sql != "0" {
							return typed{}, fmt.Errorf("CONVERT with a style")
						}
					}
					out, err = castValue(e, to)
				}
			}
		}
	default:
		return typed{}, fmt.Errorf("function %s is not translated", fn)
	}
	if err != nil {
		return out, err
	}
	return out, p.expect(")")
}

// isnull: SQL Server converts the replacement to the first argument's
// type (truncating or rounding it); it is COALESCE only when that cannot
// change it.
func (p *computedParser) isnull() (typed, error) {
	a, err := p.expr()
	if err != nil {
		return a, err
	}
	if err := p.expect(","); err != nil {
		return a, err
	}
	b, err := p.expr()
	if err != nil {
		return a, err
	}
	if !isnullFits(a, b) {
		return a, fmt.Errorf("ISNULL's replacement does not fit its first argument's type")
	}
	a.sql, a.literal = "COALESCE("+a.sql+", "+b.sql+")", false
	return a, nil
}

// isnullFits says whether ISNULL(a, b) keeps b's value as it is when it
// converts it to a's type.
func isnullFits(a, b typed) bool {
	switch a.class {
	case classInt:
		return b.class == classInt && b.prec <= a.prec
	case classDec:
		return (b.class == classDec || b.class == classInt) && b.scale <= a.scale && b.prec-b.scale <= a.prec-a.scale
	case classStr:
		return b.class == classStr && (a.length < 0 || (b.length >= 0 && b.length <= a.length)) && (a.unicode || !b.unicode)
	}
	return false
}

func (p *computedParser) coalesce() (typed, error) {
	var args []typed
	for {
		e, err := p.expr()
		if err != nil {
			return e, err
		}
		args = append(args, e)
		if p.peek() != "," {
			break
		}
		p.pos++
	}
	out := args[0]
	parts := []string{}
	for _, a := range args {
		if a.class != out.class {
			return out, fmt.Errorf("COALESCE over values of different kinds")
		}
		if a.class == classStr && (a.length < 0 || out.length < 0) {
			out.length = -1
		} else {
			out.length = max(out.length, a.length)
		}
		out.prec, out.scale, out.unicode = max(out.prec, a.prec), max(out.scale, a.scale), out.unicode || a.unicode
		parts = append(parts, a.sql)
	}
	if out.class == classDec && out.prec > 38 {
		return out, fmt.Errorf("COALESCE of decimals past 38 digits")
	}
	out.sql, out.literal = "COALESCE("+strings.Join(parts, ", ")+")", false
	return out, nil
}

// typeName reads a T-SQL type (int, [decimal](10,2), nvarchar(max)) as the
// target of a cast: sql holds its PostgreSQL name.
func (p *computedParser) typeName() (typed, error) {
	if p.pos >= len(p.toks) || p.toks[p.pos].kind != tokIdent {
		return typed{}, fmt.Errorf("expected a type at %q", p.peek())
	}
	name := strings.ToLower(p.toks[p.pos].text)
	p.pos++
	var args []string
	if p.peek() == "(" {
		p.pos++
		for p.peek() != ")" {
			if p.pos >= len(p.toks) {
				return typed{}, fmt.Errorf("unterminated type %s", name)
			}
			if p.peek() != "," {
				args = append(args, strings.ToLower(p.peek()))
			}
			p.pos++
		}
		p.pos++
	}
	num := func(i int) int {
		if i >= len(args) {
			return -2
		}
		if args[i] == "max" {
			return -1
		}
		n, err := strconv.Atoi(args[i])
		if err != nil {
			return -2
		}
		return n
	}
	switch {
	case name == "smallint" && len(args) == 0:
		return typed{sql: "smallint", class: classInt, prec: 5}, nil
	case name == "int" && len(args) == 0:
		return typed{sql: "integer", class: classInt, prec: 10}, nil
	case name == "bigint" && len(args) == 0:
		return typed{sql: "bigint", class: classInt, prec: 19}, nil
	case (name == "decimal" || name == "numeric") && len(args) == 2 && num(0) >= 1 && num(0) <= 38 && num(1) >= 0 && num(1) <= num(0):
		return typed{sql: fmt.Sprintf("numeric(%d,%d)", num(0), num(1)), class: classDec, prec: num(0), scale: num(1)}, nil
	case (name == "varchar" || name == "nvarchar") && len(args) == 1 && (num(0) == -1 || num(0) >= 1):
		t := typed{sql: "text", class: classStr, length: -1, unicode: name == "nvarchar"}
		if n := num(0); n > 0 {
			t.sql, t.length = fmt.Sprintf("varchar(%d)", n), n
		}
		return t, nil
	}
	return typed{}, fmt.Errorf("cast to %s is not translated", name)
}

func (p *computedParser) castTo(e typed) (typed, error) {
	to, err := p.typeName()
	if err != nil {
		return to, err
	}
	return castValue(e, to)
}

// castValue accepts the casts both engines do alike: integers to a wider
// integer, integers and decimals to a decimal (both round half away from
// zero), integers to a string long enough for any of their values, and
// strings to a string at least as long, never from Unicode to varchar.
func castValue(e, to typed) (typed, error) {
	ok := false
	switch to.class {
	case classInt:
		ok = e.class == classInt && e.prec <= to.prec
	case classDec:
		ok = e.class == classInt || e.class == classDec
	case classStr:
		switch e.class {
		case classInt:
			ok = to.length < 0 || to.length >= 20
		case classStr:
			ok = (to.length < 0 || (e.length >= 0 && e.length <= to.length)) && (to.unicode || !e.unicode)
		}
	}
	if !ok {
		return to, fmt.Errorf("cast to %s could change values", to.sql)
	}
	to.sql = "CAST(" + e.sql + " AS " + to.sql + ")"
	return to, nil
}
