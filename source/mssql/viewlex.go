package mssql

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The lexer of view definitions: T-SQL's lexical rules, so that nothing in
// a comment, a string or a quoted name is mistaken for SQL. Identifiers
// come out unquoted ([a]]b] is a]b, "a""b" is a"b, marked: a module created
// with QUOTED_IDENTIFIER OFF reads it as a string, and the translator
// refuses it), strings with their quotes and N prefix as written, comments
// (-- and nested /* */) dropped.

type vtok struct {
	kind    tokKind
	text    string // identifier without quotes; literal as written; operator
	quoted  bool   // [name] or "name": never a keyword
	dquoted bool   // "name": a string instead under QUOTED_IDENTIFIER OFF
	unicode bool   // N'string'
}

func (t vtok) is(word string) bool {
	return t.kind == tokIdent && !t.quoted && strings.EqualFold(t.text, word)
}

func lexTSQL(s string) ([]vtok, error) {
	var toks []vtok
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case strings.HasPrefix(s[i:], "--"):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case strings.HasPrefix(s[i:], "/*"):
			depth := 0
			for {
				if i >= len(s) {
					return nil, fmt.Errorf("unterminated comment")
				}
				if strings.HasPrefix(s[i:], "/*") {
					depth, i = depth+1, i+2
					continue
				}
				if strings.HasPrefix(s[i:], "*/") {
					depth, i = depth-1, i+2
					if depth == 0 {
						break
					}
					continue
				}
				i++
			}
		case c == '[' || c == '"':
			end := byte(']')
			if c == '"' {
				end = '"'
			}
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return nil, fmt.Errorf("unterminated quoted identifier")
				}
				if s[j] == end {
					if j+1 < len(s) && s[j+1] == end {
						b.WriteByte(end)
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			toks = append(toks, vtok{kind: tokIdent, text: b.String(), quoted: true, dquoted: c == '"'})
			i = j + 1
		case c == '\'' || ((c == 'N' || c == 'n') && i+1 < len(s) && s[i+1] == '\''):
			start := i
			j := i + 1
			if c != '\'' {
				j++
			}
			for {
				if j >= len(s) {
					return nil, fmt.Errorf("unterminated string literal")
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			toks = append(toks, vtok{kind: tokString, text: s[start : j+1], unicode: c != '\''})
			i = j + 1
		case c >= '0' && c <= '9' || (c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9'):
			j := i
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == 'x' || s[j] == 'X' ||
				(j > i && (s[j] >= 'a' && s[j] <= 'f' || s[j] >= 'A' && s[j] <= 'F'))) {
				j++
			}
			if j < len(s) && (s[j] == '+' || s[j] == '-') && (s[j-1] == 'e' || s[j-1] == 'E') {
				j++
				for j < len(s) && s[j] >= '0' && s[j] <= '9' {
					j++
				}
			}
			toks = append(toks, vtok{kind: tokNumber, text: s[i:j]})
			i = j
		case c == '_' || c == '@' || c == '#' || c >= 0x80 || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(s) {
				r, n := utf8.DecodeRuneInString(s[j:])
				if !(r == '_' || r == '@' || r == '#' || r == '$' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
					break
				}
				j += n
			}
			if j == i {
				return nil, fmt.Errorf("unsupported character %q", s[i:i+1])
			}
			toks = append(toks, vtok{kind: tokIdent, text: s[i:j]})
			i = j
		default:
			if i+1 < len(s) {
				switch two := s[i : i+2]; two {
				case "<=", ">=", "<>", "!=", "!<", "!>", "::", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=":
					toks = append(toks, vtok{kind: tokOp, text: two})
					i += 2
					continue
				}
			}
			if !strings.ContainsRune("=<>+-*/%(),.;&|^~", rune(c)) {
				return nil, fmt.Errorf("unsupported character %q", s[i:i+1])
			}
			toks = append(toks, vtok{kind: tokOp, text: string(c)})
			i++
		}
	}
	return toks, nil
}
