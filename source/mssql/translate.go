package mssql

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/caravan-db/caravan/schema"
)

// SQL Server stores defaults, check constraints, filtered-index predicates
// and computed columns as T-SQL text (sys.default_constraints.definition
// and friends), normalised by the server: "((0))", "(getdate())",
// "([qty]>=(0) AND [qty]<=(100))". caravan translates the simple, common
// shapes and reports the rest: a wrong translation would fail the load's
// finalisation or, worse, change what the constraint means.

// stripParens removes the redundant parentheses SQL Server wraps around
// stored expressions.
func stripParens(s string) string {
	s = strings.TrimSpace(s)
	for len(s) >= 2 && s[0] == '(' && s[len(s)-1] == ')' && balanced(s[1:len(s)-1]) {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

// balanced says whether parentheses outside string literals pair up, so
// "(a) + (b)" is not mistaken for one parenthesised expression.
func balanced(s string) bool {
	depth := 0
	inStr := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr:
			if c == '\'' {
				inStr = false
			}
		case c == '\'':
			inStr = true
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth < 0 {
				return false
			}
		}
	}
	return depth == 0 && !inStr
}

var (
	numberRE  = regexp.MustCompile(`^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$`)
	stringRE  = regexp.MustCompile(`^N?'((?:[^']|'')*)'$`)
	convertRE = regexp.MustCompile(`(?i)^(?:CONVERT|CAST)\s*\(\s*\[?[a-z0-9_]+\]?(?:\s*\([^)]*\))?\s*,\s*(.*)\)$`)
	// Babelfish writes a literal default as CAST(('x') AS nvarchar(1))
	castRE = regexp.MustCompile(`(?i)^CAST\s*\((.*)\s+AS\s+\[?[a-z0-9_]+\]?(?:\s*\(\s*(?:max|\d+)\s*(?:,\s*\d+\s*)?\))?\s*\)$`)
)

// translateDefault translates a column default to PostgreSQL, or returns
// ok=false with the reason for the plan's warnings.
func translateDefault(def string, t sqlType, k pgKind) (pg string, note string, ok bool) {
	e := stripParens(def)
	if m := convertRE.FindStringSubmatch(e); m != nil {
		// CONVERT([bit],(0)) and the like: the target column's type does
		// the conversion on PostgreSQL's side
		e = stripParens(m[1])
	} else if m := castRE.FindStringSubmatch(e); m != nil && balanced(m[1]) {
		e = stripParens(m[1])
	}
	switch {
	case strings.EqualFold(e, "NULL"):
		return "", "", true
	case numberRE.MatchString(e):
		if k.Name == "bool" {
			if strings.Trim(strings.TrimLeft(e, "+-"), "0.") == "" {
				return "false", "", true
			}
			return "true", "", true
		}
		if k.Name == "text" || k.Name == "bpchar" {
			return schema.QuoteLiteral(e), "", true
		}
		return e, "", true
	case stringRE.MatchString(e):
		m := stringRE.FindStringSubmatch(e)
		// T-SQL and PostgreSQL (standard_conforming_strings) agree on
		// quoting: '' is a quote, backslash is a plain character
		return "'" + m[1] + "'", "", true
	}
	fn := strings.ToLower(strings.ReplaceAll(e, " ", ""))
	switch fn {
	case "getdate()", "current_timestamp", "sysdatetime()":
		// server-local wall clock in SQL Server; the session's in PostgreSQL
		switch k.Name {
		case "date":
			return "CURRENT_DATE", "", true
		case "time":
			return "LOCALTIME", "", true
		case "timestamptz":
			return "now()", "", true
		}
		return "LOCALTIMESTAMP", "", true
	case "getutcdate()", "sysutcdatetime()":
		if k.Name == "timestamptz" {
			return "now()", "", true
		}
		return "(now() AT TIME ZONE 'UTC')", "", true
	case "sysdatetimeoffset()":
		return "now()", "", true
	case "newid()":
		return "gen_random_uuid()", "", true
	case "newsequentialid()":
		return "gen_random_uuid()", "NEWSEQUENTIALID() became gen_random_uuid(): new values are random, not increasing", true
	}
	return "", fmt.Sprintf("default %s dropped: no PostgreSQL translation", def), false
}

// exprTranslator translates boolean T-SQL expressions over one table's
// columns (checks and filtered-index predicates). Columns become quoted
// target names under the given name policy.
type exprTranslator struct {
	cols   map[string]*columnInfo // source name -> column
	policy schema.NamePolicy
}

type columnInfo struct {
	Name string
	Type sqlType
}

var exprKeywords = map[string]string{
	"and": "AND", "or": "OR", "not": "NOT", "is": "IS", "null": "NULL", "like": "LIKE",
	"in": "IN", "between": "BETWEEN", "case": "CASE", "when": "WHEN", "then": "THEN",
	"else": "ELSE", "end": "END",
}

// exprFunctions are T-SQL functions that mean the same in PostgreSQL.
var exprFunctions = map[string]string{
	"abs": "abs", "lower": "lower", "upper": "upper", "floor": "floor", "ceiling": "ceiling",
}

// translate returns the PostgreSQL text of e, or an error saying what
// could not be translated.
func (x *exprTranslator) translate(e string) (string, error) {
	toks, err := tokenize(e)
	if err != nil {
		return "", err
	}
	var out []string
	stringy := false // any string operand: then + would be concatenation
	plus := false
	for i, tk := range toks {
		switch {
		case tk.kind == tokIdent:
			low := strings.ToLower(tk.text)
			if !tk.bracketed {
				if kw, ok := exprKeywords[low]; ok {
					out = append(out, kw)
					continue
				}
				if fn, ok := exprFunctions[low]; ok && i+1 < len(toks) && toks[i+1].text == "(" {
					out = append(out, fn)
					continue
				}
			}
			c := x.column(tk.text)
			if c == nil {
				return "", fmt.Errorf("%q is not a column or a translatable function", tk.text)
			}
			if c.Type.Name == "bit" {
				return "", fmt.Errorf("bit column %q: SQL Server compares it with 0/1, PostgreSQL's boolean does not", c.Name)
			}
			if c.Type.isChar() {
				stringy = true
			}
			out = append(out, schema.Quote(x.policy.Ident(c.Name)))
		case tk.kind == tokString:
			stringy = true
			out = append(out, tk.text)
		case tk.kind == tokNumber:
			out = append(out, tk.text)
		default:
			switch tk.text {
			case "!<":
				out = append(out, ">=")
			case "!>":
				out = append(out, "<=")
			case "+":
				plus = true
				out = append(out, "+")
			default:
				out = append(out, tk.text)
			}
		}
	}
	if plus && stringy {
		return "", fmt.Errorf("+ on strings is concatenation in T-SQL only")
	}
	return joinTokens(out), nil
}

func (x *exprTranslator) column(name string) *columnInfo {
	if c, ok := x.cols[name]; ok {
		return c
	}
	for n, c := range x.cols {
		if strings.EqualFold(n, name) {
			return c
		}
	}
	return nil
}

type tokKind int

const (
	tokIdent tokKind = iota
	tokString
	tokNumber
	tokOp
)

type token struct {
	kind      tokKind
	text      string
	bracketed bool
}

// tokenize reads a catalog expression (a default, a check, a computed
// column or an index filter) with the package's one T-SQL lexer
// (lexTSQL: comments, [names], N'strings' and all), then keeps to the
// subset exprTranslator knows: anything else is refused here, by name.
func tokenize(s string) ([]token, error) {
	lexed, err := lexTSQL(s)
	if err != nil {
		return nil, err
	}
	toks := make([]token, 0, len(lexed))
	for _, v := range lexed {
		t := token{kind: v.kind, text: v.text, bracketed: v.quoted}
		switch v.kind {
		case tokIdent:
			if v.dquoted {
				// QUOTED_IDENTIFIER decides whether it is a name or a string.
				return nil, fmt.Errorf("double-quoted token %q", v.text)
			}
			if !v.quoted && strings.ContainsAny(v.text, "@#$") {
				return nil, fmt.Errorf("unsupported name %q", v.text)
			}
		case tokString:
			if v.unicode {
				t.text = v.text[1:] // N'...': the translation writes the literal alone
			}
		case tokNumber:
			if !numberRE.MatchString(v.text) {
				return nil, fmt.Errorf("bad number %q", v.text)
			}
		case tokOp:
			if !exprOps[v.text] {
				return nil, fmt.Errorf("unsupported operator %q", v.text)
			}
		}
		toks = append(toks, t)
	}
	return toks, nil
}

// exprOps are the operators exprTranslator knows.
var exprOps = map[string]bool{"<=": true, ">=": true, "<>": true, "!=": true, "!<": true, "!>": true,
	"=": true, "<": true, ">": true, "+": true, "-": true, "*": true, "/": true, "%": true, "(": true, ")": true, ",": true}

// joinTokens spaces tokens readably: none inside parentheses or before commas.
func joinTokens(toks []string) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 {
			prev := toks[i-1]
			if prev != "(" && t != ")" && t != "," && !(t == "(" && isWord(prev)) {
				b.WriteByte(' ')
			}
		}
		b.WriteString(t)
	}
	return b.String()
}

func isWord(s string) bool {
	if s == "" {
		return false
	}
	c := s[0]
	return c == '_' || c >= 'a' && c <= 'z'
}
