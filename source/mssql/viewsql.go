package mssql

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/caravan-db/caravan/schema"
)

// View translation: a SQL Server view's definition (OBJECT_DEFINITION, the
// CREATE VIEW text as written) becomes a PostgreSQL CREATE VIEW naming the
// target's objects, when caravan knows for certain that PostgreSQL returns
// the same rows. Anything it does not know for certain is refused with the
// construct named, and the view stays listed as not migrated with its
// text. What is refused on purpose, though it looks alike:
//   - comparing, grouping, sorting or deduplicating strings (=, <, IN,
//     BETWEEN, LIKE, GROUP BY, DISTINCT, UNION, MIN/MAX): SQL Server
//     compares under the column's collation, usually case-insensitive, and
//     ignores trailing spaces; PostgreSQL's text does neither;
//   - + on char(n) (|| drops the padding), or on values whose types are
//     not known to be strings or numbers;
//   - / and % on decimals, AVG but of floats (SQL Server's result scales
//     differ), casts that could round or truncate differently, CONVERT
//     with a style, dates written as strings (read under DATEFORMAT);
//   - SELECT * (the view's columns are those of its tables when it was
//     created), subqueries in expressions, APPLY, PIVOT, CTEs, window
//     functions, user functions, TOP without ORDER BY, PERCENT, WITH TIES.

// vclass is what the translator knows of a value's type.
type vclass int

const (
	vUnknown vclass = iota
	vInt            // tinyint .. bigint
	vDec            // decimal, numeric
	vFloat          // float, real
	vStr            // char, varchar, nchar, nvarchar
	vTime           // date and time types
	vBit            // bit (boolean on the target)
	vNull           // the NULL literal
	vPred           // a condition
)

// vexpr is a translated expression.
type vexpr struct {
	sql   string
	class vclass
	t     typed  // for vInt, vDec, vStr: as computed.go reasons about them
	char  bool   // char(n)/nchar(n): blank-padded
	coll  string // a string column's collation
	tname string // the source type's name, for vTime
	agg   bool   // holds an aggregate
}

// relCol is a column a FROM item gives: its source name, its target name
// and what is known of its type.
type relCol struct {
	name, target string
	e            vexpr
}

// rel is one FROM item in scope.
type rel struct {
	ref   string   // how the target SQL qualifies its columns (quoted)
	names []string // the qualifiers T-SQL accepts for it: alias, or name and schema.name
	cols  []relCol
}

// viewSet translates the views of one run; views on views are translated
// first (their output columns are the inner query's scope).
type viewSet struct {
	db      *schema.Database
	policy  schema.NamePolicy
	d       dialect
	objects map[string][]catalogObject // lower-case "schema.name" -> objects so named
	byName  map[string][]catalogObject // lower-case name -> objects so named
	views   map[string]*viewState      // by source "schema.name"
	order   []*viewState               // translated views, each after those it uses
}

type catalogObject struct {
	kind  string // "table", "view", or what objectKinds calls it
	name  schema.Name
	table *schema.Table // a table of the run
	view  *viewState
}

type viewState struct {
	inRun      bool // listed by the inventory: a view of the run's schemas
	name       schema.Name
	definition string
	busy, done bool
	err        error
	target     schema.Name
	sql        string
	cols       []relCol
	needs      []string
}

func lowerKey(n schema.Name) string { return strings.ToLower(n.Schema + "." + n.Name) }

// translateViews replaces the view entries discovery listed as not
// migrated: each view whose query translates becomes one of db.Views (in
// dependency order), the others keep their entry with the reason.
func translateViews(rows *catalogRows, d dialect, db *schema.Database) {
	set := &viewSet{db: db, policy: db.Policy, d: d, objects: map[string][]catalogObject{}, byName: map[string][]catalogObject{}, views: map[string]*viewState{}}
	add := func(o catalogObject) {
		set.objects[lowerKey(o.name)] = append(set.objects[lowerKey(o.name)], o)
		set.byName[strings.ToLower(o.name.Name)] = append(set.byName[strings.ToLower(o.name.Name)], o)
	}
	for _, t := range rows.Tables {
		n := schema.Name{Schema: t.Schema, Name: t.Name}
		add(catalogObject{kind: "table", name: n, table: db.Table(n)})
	}
	for _, o := range rows.Objects {
		n := schema.Name{Schema: o.Schema, Name: o.Name}
		switch {
		case o.Type == "V":
			v := &viewState{name: n, definition: o.Definition}
			set.views[n.String()] = v
			add(catalogObject{kind: "view", name: n, view: v})
		case o.Schema != "" && o.Type != "TR" && o.Type != "SV":
			kind := "object"
			if k, ok := objectKinds[o.Type]; ok {
				kind = k.kind
			}
			add(catalogObject{kind: kind, name: n})
		}
	}
	for _, s := range rows.Sequences {
		add(catalogObject{kind: "sequence", name: schema.Name{Schema: s.Schema, Name: s.Name}})
	}
	for _, u := range db.Unmigrated {
		if v := set.views[u.Name]; u.Kind == "view" && v != nil {
			v.inRun = true
		}
	}
	for _, u := range db.Unmigrated {
		if v := set.views[u.Name]; u.Kind == "view" && v != nil {
			if err := set.translate(v); err != nil {
				u.Reason = "its query is not translated: " + err.Error()
			}
		}
	}
	kept := db.Unmigrated[:0]
	for _, u := range db.Unmigrated {
		if v := set.views[u.Name]; u.Kind != "view" || v == nil || v.err != nil {
			kept = append(kept, u)
		}
	}
	db.Unmigrated = kept
	for _, v := range set.order {
		db.Views = append(db.Views, &schema.Object{Kind: "view", Name: v.name.String(), SQL: []string{v.sql}, Mapped: true, Needs: v.needs})
	}
}

// translate translates a view once, the views it uses first.
func (s *viewSet) translate(v *viewState) error {
	if v.done {
		return v.err
	}
	if v.busy {
		return fmt.Errorf("view %s uses itself", v.name)
	}
	v.busy = true
	v.err = s.build(v)
	v.busy, v.done = false, true
	if v.err == nil {
		s.order = append(s.order, v)
	}
	return v.err
}

func (s *viewSet) build(v *viewState) error {
	if strings.TrimSpace(v.definition) == "" {
		return fmt.Errorf("its definition is not readable (WITH ENCRYPTION)")
	}
	toks, err := lexTSQL(s.d.viewDefinition(v.definition))
	if err != nil {
		return err
	}
	v.target = schema.Name{Schema: s.policy.Schema(v.name.Schema), Name: s.policy.Ident(v.name.Name)}
	for _, t := range toks {
		if t.dquoted {
			return fmt.Errorf("\"%s\" is not translated: a name or a string depending on the QUOTED_IDENTIFIER the view was created with", t.text)
		}
	}
	p := &vparser{set: s, toks: toks, view: v}
	v.sql, v.cols, err = p.createView()
	return err
}

// vparser reads one view's tokens.
type vparser struct {
	set  *viewSet
	toks []vtok
	pos  int
	view *viewState
}

func (p *vparser) peek() vtok {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return vtok{kind: tokOp, text: ""}
}

func (p *vparser) at(word string) bool { return p.peek().is(word) }
func (p *vparser) atOp(op string) bool {
	t := p.peek()
	return t.kind == tokOp && t.text == op
}

func (p *vparser) accept(word string) bool {
	if p.at(word) {
		p.pos++
		return true
	}
	return false
}

func (p *vparser) acceptOp(op string) bool {
	if p.atOp(op) {
		p.pos++
		return true
	}
	return false
}

func (p *vparser) expect(word string) error {
	if p.accept(word) || (p.peek().kind == tokOp && p.acceptOp(word)) {
		return nil
	}
	return p.unexpected("expected " + word)
}

func (p *vparser) unexpected(what string) error {
	if p.pos >= len(p.toks) {
		return fmt.Errorf("%s at the end of the definition", what)
	}
	return fmt.Errorf("%s at %q", what, p.peek().text)
}

// keywords are the words that end an expression or a select item when
// written unquoted.
var keywords = map[string]bool{
	"select": true, "from": true, "where": true, "group": true, "by": true, "having": true, "order": true,
	"union": true, "all": true, "except": true, "intersect": true, "join": true, "inner": true, "left": true,
	"right": true, "full": true, "outer": true, "cross": true, "on": true, "as": true, "with": true, "and": true,
	"or": true, "not": true, "is": true, "null": true, "in": true, "between": true, "like": true, "case": true,
	"when": true, "then": true, "else": true, "end": true, "apply": true, "pivot": true, "unpivot": true,
	"option": true, "for": true, "distinct": true, "top": true, "exists": true, "check": true, "escape": true,
	"over": true, "collate": true, "asc": true, "desc": true, "offset": true, "fetch": true, "into": true,
	"tablesample": true, "percent": true, "ties": true,
}

func isKeyword(t vtok) bool {
	return t.kind == tokIdent && !t.quoted && keywords[strings.ToLower(t.text)]
}

// createView reads CREATE [OR ALTER] VIEW name [(columns)] [WITH options]
// AS query [WITH CHECK OPTION] [;]. The view's name is the catalog's (the
// text keeps the name it was created with, even after sp_rename).
func (p *vparser) createView() (string, []relCol, error) {
	if err := p.expect("CREATE"); err != nil {
		return "", nil, err
	}
	if p.accept("OR") {
		if err := p.expect("ALTER"); err != nil {
			return "", nil, err
		}
	}
	if err := p.expect("VIEW"); err != nil {
		return "", nil, err
	}
	if _, err := p.objectName(); err != nil {
		return "", nil, err
	}
	var colList []string
	if p.acceptOp("(") {
		for {
			t := p.peek()
			if t.kind != tokIdent {
				return "", nil, p.unexpected("expected a column name")
			}
			p.pos++
			colList = append(colList, t.text)
			if !p.acceptOp(",") {
				break
			}
		}
		if err := p.expect(")"); err != nil {
			return "", nil, err
		}
	}
	if p.accept("WITH") {
		for {
			switch {
			case p.accept("SCHEMABINDING"), p.accept("VIEW_METADATA"):
				// neither changes the rows: binding guards the source's
				// tables, metadata what client APIs are told
			case p.at("ENCRYPTION"):
				return "", nil, fmt.Errorf("its definition is not readable (WITH ENCRYPTION)")
			default:
				return "", nil, p.unexpected("view option")
			}
			if !p.acceptOp(",") {
				break
			}
		}
	}
	if err := p.expect("AS"); err != nil {
		return "", nil, err
	}
	if p.at("WITH") {
		return "", nil, fmt.Errorf("WITH (a common table expression) is not translated")
	}
	q, cols, err := p.query(true)
	if err != nil {
		return "", nil, err
	}
	check := ""
	if p.accept("WITH") {
		if err := p.expect("CHECK"); err != nil {
			return "", nil, err
		}
		if err := p.expect("OPTION"); err != nil {
			return "", nil, err
		}
		// SQL Server checks the rows of views on this one too: CASCADED
		check = " WITH CASCADED CHECK OPTION"
	}
	for p.acceptOp(";") {
	}
	if p.pos < len(p.toks) {
		return "", nil, p.unexpected("unexpected text after the query")
	}
	if len(colList) > 0 {
		if len(colList) != len(cols) {
			return "", nil, fmt.Errorf("%d column names for %d columns", len(colList), len(cols))
		}
		for i := range cols {
			cols[i].name = colList[i]
		}
	}
	if err := namedColumns(cols); err != nil {
		return "", nil, err
	}
	names := make([]string, len(cols))
	for i := range cols {
		cols[i].target = p.set.policy.Ident(cols[i].name)
		names[i] = schema.Quote(cols[i].target)
	}
	sql := "CREATE OR REPLACE VIEW " + schema.QuoteName(p.view.target) + " (" + strings.Join(names, ", ") + ") AS " + q + check
	return sql, cols, nil
}

// objectName reads a name of up to three parts (database.schema.name),
// returned last part first.
func (p *vparser) objectName() ([]string, error) {
	var parts []string
	for {
		t := p.peek()
		if t.kind != tokIdent || (isKeyword(t) && len(parts) == 0) {
			return nil, p.unexpected("expected a name")
		}
		p.pos++
		parts = append([]string{t.text}, parts...)
		if !p.acceptOp(".") {
			return parts, nil
		}
	}
}

// query reads select cores joined by UNION [ALL]. The outermost query may
// have TOP n with ORDER BY (LIMIT n).
func (p *vparser) query(outer bool) (string, []relCol, error) {
	sql, cols, limited, err := p.selectCore(outer)
	if err != nil {
		return "", nil, err
	}
	for p.at("UNION") {
		p.pos++
		all := p.accept("ALL")
		if limited {
			return "", nil, fmt.Errorf("TOP or ORDER BY with UNION is not translated")
		}
		next, ncols, nlimited, err := p.selectCore(false)
		if err != nil {
			return "", nil, err
		}
		if nlimited {
			return "", nil, fmt.Errorf("TOP or ORDER BY with UNION is not translated")
		}
		if len(ncols) != len(cols) {
			return "", nil, fmt.Errorf("UNION of %d and %d columns", len(cols), len(ncols))
		}
		for i := range cols {
			cols[i].e = unionClass(cols[i].e, ncols[i].e)
			if !all {
				if err := comparable(cols[i].e, "UNION (which removes duplicates)"); err != nil {
					return "", nil, err
				}
			}
		}
		op := " UNION "
		if all {
			op = " UNION ALL "
		}
		sql += op + next
	}
	if p.at("EXCEPT") || p.at("INTERSECT") {
		return "", nil, fmt.Errorf("%s is not translated", strings.ToUpper(p.peek().text))
	}
	return sql, cols, nil
}

// unionClass is what is known of a column of two branches: SQL Server
// types it by the higher of the two, as PostgreSQL finds a common type,
// and the length of a string is then not known.
func unionClass(a, b vexpr) vexpr {
	switch {
	case a.class == vNull:
		return b
	case b.class == vNull:
		return a
	case a.class != b.class || a.class == vUnknown || (a.class == vTime && a.tname != b.tname):
		return vexpr{class: vUnknown}
	}
	out := vexpr{class: a.class, tname: a.tname, char: a.char || b.char}
	switch a.class {
	case vInt:
		out.t = typed{class: classInt, prec: max(a.t.prec, b.t.prec), tiny: a.t.tiny && b.t.tiny}
	case vDec:
		scale := max(a.t.scale, b.t.scale)
		out.t = typed{class: classDec, scale: scale, prec: scale + max(a.t.prec-a.t.scale, b.t.prec-b.t.scale)}
	case vStr:
		out.t = typed{class: classStr, length: -1, unicode: a.t.unicode || b.t.unicode}
		if a.coll == b.coll {
			out.coll = a.coll
		}
	}
	return out
}

// comparable refuses to compare, group or sort values unless both
// engines order them alike.
func comparable(e vexpr, what string) error {
	switch e.class {
	case vInt, vDec, vFloat, vTime, vBit, vNull:
		return nil
	case vStr:
		return fmt.Errorf("%s on strings is not translated: SQL Server compares them under their collation%s and ignores trailing spaces, PostgreSQL does neither", what, collNote(e.coll))
	}
	return fmt.Errorf("%s on values of a type caravan does not know is not translated", what)
}

func collNote(c string) string {
	if c == "" {
		return ""
	}
	return " (" + c + ")"
}

// selectCore reads SELECT ... FROM ... WHERE ... GROUP BY ... HAVING ...,
// and in the outermost query TOP n ... ORDER BY. The select list is read
// after FROM, whose names it uses.
func (p *vparser) selectCore(outer bool) (string, []relCol, bool, error) {
	if err := p.expect("SELECT"); err != nil {
		return "", nil, false, err
	}
	distinct := false
	if p.accept("DISTINCT") {
		distinct = true
	} else {
		p.accept("ALL")
	}
	limit := ""
	if p.accept("TOP") {
		if !outer {
			return "", nil, false, fmt.Errorf("TOP in a subquery is not translated")
		}
		paren := p.acceptOp("(")
		t := p.peek()
		n, err := strconv.ParseInt(t.text, 10, 64)
		if t.kind != tokNumber || err != nil || n < 0 {
			return "", nil, false, fmt.Errorf("TOP %s is not translated (only a number is)", t.text)
		}
		p.pos++
		if paren {
			if err := p.expect(")"); err != nil {
				return "", nil, false, err
			}
		}
		if p.at("PERCENT") {
			return "", nil, false, fmt.Errorf("TOP ... PERCENT is not translated")
		}
		if p.at("WITH") {
			return "", nil, false, fmt.Errorf("TOP ... WITH TIES is not translated")
		}
		limit = " LIMIT " + strconv.FormatInt(n, 10)
	}
	listStart := p.pos
	if err := p.skipList(); err != nil {
		return "", nil, false, err
	}
	listEnd := p.pos
	var scope []*rel
	from := ""
	if p.accept("FROM") {
		var err error
		if from, scope, err = p.fromClause(); err != nil {
			return "", nil, false, err
		}
		from = " FROM " + from
	}
	sub := &vparser{set: p.set, toks: p.toks[listStart:listEnd], view: p.view}
	items, cols, err := sub.selectList(scope)
	if err != nil {
		return "", nil, false, err
	}
	if distinct {
		for _, c := range cols {
			if err := comparable(c.e, "DISTINCT"); err != nil {
				return "", nil, false, err
			}
		}
	}
	sql := "SELECT "
	if distinct {
		sql += "DISTINCT "
	}
	sql += items + from
	if p.accept("WHERE") {
		w, err := p.condition(scope)
		if err != nil {
			return "", nil, false, err
		}
		sql += " WHERE " + w
	}
	if p.accept("GROUP") {
		if err := p.expect("BY"); err != nil {
			return "", nil, false, err
		}
		if p.at("ALL") {
			return "", nil, false, fmt.Errorf("GROUP BY ALL is not translated")
		}
		var keys []string
		for {
			e, err := p.expr(scope)
			if err != nil {
				return "", nil, false, err
			}
			if err := comparable(e, "GROUP BY"); err != nil {
				return "", nil, false, err
			}
			keys = append(keys, e.sql)
			if !p.acceptOp(",") {
				break
			}
		}
		if p.at("WITH") {
			return "", nil, false, fmt.Errorf("GROUP BY ... WITH ROLLUP/CUBE is not translated")
		}
		sql += " GROUP BY " + strings.Join(keys, ", ")
	}
	if p.accept("HAVING") {
		h, err := p.condition(scope)
		if err != nil {
			return "", nil, false, err
		}
		sql += " HAVING " + h
	}
	if p.at("ORDER") {
		if limit == "" {
			return "", nil, false, fmt.Errorf("ORDER BY without TOP is not translated")
		}
		p.pos++
		if err := p.expect("BY"); err != nil {
			return "", nil, false, err
		}
		var keys []string
		for {
			e, err := p.orderKey(scope, cols)
			if err != nil {
				return "", nil, false, err
			}
			if err := comparable(e, "ORDER BY with TOP"); err != nil {
				return "", nil, false, err
			}
			// SQL Server sorts NULL first, PostgreSQL last: TOP would
			// keep other rows
			if p.accept("DESC") {
				e.sql += " DESC NULLS LAST"
			} else {
				p.accept("ASC")
				e.sql += " NULLS FIRST"
			}
			keys = append(keys, e.sql)
			if !p.acceptOp(",") {
				break
			}
		}
		if p.at("OFFSET") {
			return "", nil, false, fmt.Errorf("OFFSET is not translated")
		}
		sql += " ORDER BY " + strings.Join(keys, ", ") + limit
		return sql, cols, true, nil
	}
	if limit != "" {
		return "", nil, false, fmt.Errorf("TOP without ORDER BY is not translated (the rows it returns are not defined)")
	}
	return sql, cols, false, nil
}

// skipList moves past a select list: to FROM, or what ends the select at
// its parenthesis depth.
func (p *vparser) skipList() error {
	depth := 0
	for ; p.pos < len(p.toks); p.pos++ {
		t := p.toks[p.pos]
		switch {
		case t.kind == tokOp && t.text == "(":
			depth++
		case t.kind == tokOp && t.text == ")":
			if depth == 0 {
				return nil
			}
			depth--
		case depth == 0 && (t.is("FROM") || t.is("WHERE") || t.is("GROUP") || t.is("HAVING") || t.is("ORDER") ||
			t.is("UNION") || t.is("EXCEPT") || t.is("INTERSECT") || t.is("WITH") || t.is("OPTION") || t.is("INTO") ||
			(t.kind == tokOp && t.text == ";")):
			return nil
		}
	}
	return nil
}

// selectList translates the select items, each with an explicit target
// name: its alias (AS alias, alias = expr, expr alias) or its column's.
func (p *vparser) selectList(scope []*rel) (string, []relCol, error) {
	var items []string
	var cols []relCol
	for {
		if p.atOp("*") || (p.peek().kind == tokIdent && p.pos+2 < len(p.toks) && p.toks[p.pos+1].text == "." && p.toks[p.pos+2].text == "*") {
			return "", nil, fmt.Errorf("SELECT * is not translated (the view's columns are those its tables had when it was created); list the columns")
		}
		name := ""
		if t := p.peek(); (t.kind == tokIdent && !isKeyword(t) || t.kind == tokString) && p.pos+1 < len(p.toks) && p.toks[p.pos+1].kind == tokOp && p.toks[p.pos+1].text == "=" {
			name = literalName(t)
			p.pos += 2
		}
		start := p.pos
		e, err := p.expr(scope)
		if err != nil {
			return "", nil, err
		}
		if e.class == vPred {
			return "", nil, fmt.Errorf("a condition in the select list is not translated")
		}
		if name == "" {
			explicit := p.accept("AS")
			if t := p.peek(); (t.kind == tokIdent && !isKeyword(t)) || t.kind == tokString {
				name = literalName(t)
				p.pos++
			} else if explicit {
				return "", nil, p.unexpected("expected an alias")
			}
		}
		if name == "" && bareColumn(p.toks[start:p.pos]) {
			name = p.toks[p.pos-1].text // a bare column keeps its name
		}
		target, item := "", e.sql
		if name != "" {
			// without a name, only a later UNION branch or a view with a
			// column list may have it (namedColumns)
			target = p.set.policy.Ident(name)
			item += " AS " + schema.Quote(target)
		}
		items = append(items, item)
		cols = append(cols, relCol{name: name, target: target, e: e})
		if !p.acceptOp(",") {
			break
		}
	}
	if p.pos < len(p.toks) {
		return "", nil, p.unexpected("unexpected text in the select list")
	}
	return strings.Join(items, ", "), cols, nil
}

// bareColumn says whether tokens are a column reference: name[.name...].
func bareColumn(toks []vtok) bool {
	if len(toks)%2 == 0 {
		return false
	}
	for i, t := range toks {
		if (i%2 == 0) != (t.kind == tokIdent) || (i%2 == 1 && t.text != ".") {
			return false
		}
	}
	return true
}

// namedColumns refuses columns without a name where one is needed.
func namedColumns(cols []relCol) error {
	for _, c := range cols {
		if c.name == "" {
			return fmt.Errorf("a select item without a name is not translated")
		}
	}
	return nil
}

// literalName is an alias written as a name or a string ('alias').
func literalName(t vtok) string {
	if t.kind != tokString {
		return t.text
	}
	s := t.text
	if t.unicode {
		s = s[1:]
	}
	return strings.ReplaceAll(s[1:len(s)-1], "''", "'")
}

// orderKey is an ORDER BY key: a select item's name, or an expression.
func (p *vparser) orderKey(scope []*rel, cols []relCol) (vexpr, error) {
	if t := p.peek(); t.kind == tokIdent && !isKeyword(t) && !(p.pos+1 < len(p.toks) && (p.toks[p.pos+1].text == "." || p.toks[p.pos+1].text == "(")) {
		var found *relCol
		for i := range cols {
			if strings.EqualFold(cols[i].name, t.text) {
				if found != nil {
					return vexpr{}, fmt.Errorf("ORDER BY %s names two select items", t.text)
				}
				found = &cols[i]
			}
		}
		if found != nil {
			p.pos++
			e := found.e
			e.sql = schema.Quote(found.target)
			return e, nil
		}
	}
	if p.peek().kind == tokNumber {
		return vexpr{}, fmt.Errorf("ORDER BY a column number is not translated")
	}
	return p.expr(scope)
}

// fromClause reads FROM items and joins, and returns the scope they make.
func (p *vparser) fromClause() (string, []*rel, error) {
	var scope []*rel
	sql, r, err := p.fromItem()
	if err != nil {
		return "", nil, err
	}
	scope = append(scope, r)
	for {
		switch {
		case p.acceptOp(","):
			s, r, err := p.fromItem()
			if err != nil {
				return "", nil, err
			}
			scope = append(scope, r)
			sql += ", " + s
			continue
		case p.at("CROSS") || p.at("OUTER"):
			word := strings.ToUpper(p.peek().text)
			if p.pos+1 < len(p.toks) && p.toks[p.pos+1].is("APPLY") {
				return "", nil, fmt.Errorf("%s APPLY is not translated", word)
			}
			if word == "OUTER" {
				return "", nil, p.unexpected("unexpected OUTER")
			}
			p.pos++
			if err := p.expect("JOIN"); err != nil {
				return "", nil, err
			}
			s, r, err := p.fromItem()
			if err != nil {
				return "", nil, err
			}
			scope = append(scope, r)
			sql += " CROSS JOIN " + s
			continue
		}
		kind := ""
		switch {
		case p.at("JOIN"):
			kind = "JOIN"
		case p.accept("INNER"):
			kind = "JOIN"
		case p.accept("LEFT"):
			kind = "LEFT JOIN"
		case p.accept("RIGHT"):
			kind = "RIGHT JOIN"
		case p.accept("FULL"):
			kind = "FULL JOIN"
		case p.at("PIVOT") || p.at("UNPIVOT"):
			return "", nil, fmt.Errorf("%s is not translated", strings.ToUpper(p.peek().text))
		default:
			return sql, scope, nil
		}
		if kind != "JOIN" {
			p.accept("OUTER")
		}
		if !p.accept("JOIN") {
			return "", nil, p.unexpected("join hints are not translated; expected JOIN")
		}
		s, r, err := p.fromItem()
		if err != nil {
			return "", nil, err
		}
		scope = append(scope, r)
		if err := p.expect("ON"); err != nil {
			return "", nil, err
		}
		on, err := p.condition(scope)
		if err != nil {
			return "", nil, err
		}
		sql += " " + kind + " " + s + " ON " + on
	}
}

// fromItem reads a table or view (with an optional alias and locking
// hints, which do not change the rows) or a derived table.
func (p *vparser) fromItem() (string, *rel, error) {
	if p.acceptOp("(") {
		if !p.at("SELECT") {
			return "", nil, fmt.Errorf("parenthesised joins are not translated")
		}
		q, cols, err := p.query(false)
		if err == nil {
			err = namedColumns(cols)
		}
		if err != nil {
			return "", nil, err
		}
		if err := p.expect(")"); err != nil {
			return "", nil, err
		}
		p.accept("AS")
		t := p.peek()
		if t.kind != tokIdent || isKeyword(t) {
			return "", nil, p.unexpected("expected the derived table's alias")
		}
		p.pos++
		r := &rel{ref: schema.Quote(t.text), names: []string{t.text}}
		for _, c := range cols {
			r.cols = append(r.cols, relCol{name: c.name, target: c.target, e: c.e})
		}
		return "(" + q + ") AS " + r.ref, r, nil
	}
	parts, err := p.objectName()
	if err != nil {
		return "", nil, err
	}
	if p.atOp("(") {
		return "", nil, fmt.Errorf("table-valued function %s is not translated", strings.Join(reverse(parts), "."))
	}
	r, target, err := p.resolve(parts)
	if err != nil {
		return "", nil, err
	}
	sql := schema.QuoteName(target)
	alias := ""
	if p.accept("AS") {
		t := p.peek()
		if t.kind != tokIdent {
			return "", nil, p.unexpected("expected an alias")
		}
		alias = t.text
		p.pos++
	} else if t := p.peek(); t.kind == tokIdent && !isKeyword(t) {
		alias = t.text
		p.pos++
	}
	if p.at("TABLESAMPLE") {
		return "", nil, fmt.Errorf("TABLESAMPLE is not translated")
	}
	if p.at("WITH") && p.pos+1 < len(p.toks) && p.toks[p.pos+1].text == "(" {
		p.pos += 2
		if err := p.tableHints(); err != nil {
			return "", nil, err
		}
	}
	if alias != "" {
		r.ref, r.names = schema.Quote(alias), []string{alias}
		sql += " AS " + r.ref
	}
	return sql, r, nil
}

// tableHints accepts the hints that only choose how rows are locked or
// read, never which rows a query returns on a quiet database.
func (p *vparser) tableHints() error {
	for {
		t := p.peek()
		switch strings.ToUpper(t.text) {
		case "NOLOCK", "READUNCOMMITTED", "READCOMMITTED", "NOEXPAND", "HOLDLOCK", "SERIALIZABLE", "REPEATABLEREAD", "ROWLOCK", "PAGLOCK", "TABLOCK", "UPDLOCK":
			p.pos++
		default:
			return fmt.Errorf("table hint %s is not translated", t.text)
		}
		if !p.acceptOp(",") {
			return p.expect(")")
		}
	}
}

func reverse(parts []string) []string {
	out := make([]string, len(parts))
	for i, s := range parts {
		out[len(parts)-1-i] = s
	}
	return out
}

// resolve finds the table or view a FROM name means, as SQL Server would:
// an unqualified name only when one schema holds an object so named.
func (p *vparser) resolve(parts []string) (*rel, schema.Name, error) {
	var cands []catalogObject
	var shown string
	switch len(parts) {
	case 1:
		shown = parts[0]
		cands = p.set.byName[strings.ToLower(parts[0])]
		if len(cands) > 1 {
			return nil, schema.Name{}, fmt.Errorf("unqualified name %s: several schemas hold an object so named", shown)
		}
	case 2:
		n := schema.Name{Schema: parts[1], Name: parts[0]}
		shown = n.String()
		cands = p.set.objects[lowerKey(n)]
	default:
		return nil, schema.Name{}, fmt.Errorf("name %s of another database or server is not translated", strings.Join(reverse(parts), "."))
	}
	if len(cands) != 1 {
		if len(cands) == 0 {
			return nil, schema.Name{}, fmt.Errorf("%s is not an object caravan found in the source's catalog", shown)
		}
		return nil, schema.Name{}, fmt.Errorf("name %s matches several objects (they differ in case)", shown)
	}
	o := cands[0]
	r := &rel{names: []string{o.name.Name, o.name.String()}}
	switch {
	case o.kind == "table" && o.table == nil:
		return nil, schema.Name{}, fmt.Errorf("it uses table %s, which is not part of this run", o.name)
	case o.kind == "table":
		t := o.table
		r.ref = schema.Quote(t.Target.Name)
		for _, c := range t.Columns {
			r.cols = append(r.cols, relCol{name: c.Name, target: c.TargetName, e: columnClass(c)})
		}
		return r, t.Target, nil
	case o.kind == "view" && !o.view.inRun:
		return nil, schema.Name{}, fmt.Errorf("it uses view %s, which is not part of this run", o.name)
	case o.kind == "view":
		if err := p.set.translate(o.view); err != nil {
			return nil, schema.Name{}, fmt.Errorf("it uses view %s, which is not migrated", o.name)
		}
		if !contains(p.view.needs, o.name.String()) {
			p.view.needs = append(p.view.needs, o.name.String())
		}
		r.ref = schema.Quote(o.view.target.Name)
		r.cols = o.view.cols
		return r, o.view.target, nil
	}
	return nil, schema.Name{}, fmt.Errorf("it uses %s %s, which is not translated", o.kind, o.name)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// columnClass is what is known of a table column's values on both sides:
// its class when the target column has the type caravan maps the source
// type to (a type override makes it unknown).
func columnClass(c *schema.Column) vexpr {
	st, err := parseSQLType(c.SourceType)
	if err != nil {
		return vexpr{class: vUnknown}
	}
	if !strings.EqualFold(c.Type, defaultPGType(st, false)) {
		return vexpr{class: vUnknown}
	}
	e := vexpr{tname: st.Name, coll: st.Collation}
	switch {
	case st.isInteger(), st.Name == "decimal", st.Name == "numeric":
		t, _ := classOf(st)
		e.class, e.t = vInt, t
		if t.class == classDec {
			e.class = vDec
		}
	case st.Name == "varchar", st.Name == "nvarchar":
		t, _ := classOf(st)
		e.class, e.t = vStr, t
	case st.Name == "char", st.Name == "nchar":
		e.class, e.char = vStr, true
		e.t = typed{class: classStr, length: st.Length, unicode: st.Name == "nchar"}
	case st.Name == "float", st.Name == "real":
		e.class = vFloat
	case st.isTemporal():
		e.class = vTime
	case st.Name == "bit":
		e.class = vBit
	}
	return e
}

// condition reads a search condition (WHERE, ON, HAVING, WHEN).
func (p *vparser) condition(scope []*rel) (string, error) {
	e, err := p.expr(scope)
	if err != nil {
		return "", err
	}
	if e.class != vPred {
		return "", fmt.Errorf("a value where a condition is expected is not translated")
	}
	return e.sql, nil
}

// expr reads an expression: OR of AND of NOT of predicates.
func (p *vparser) expr(scope []*rel) (vexpr, error) {
	l, err := p.andExpr(scope)
	if err != nil {
		return l, err
	}
	for p.accept("OR") {
		r, err := p.andExpr(scope)
		if err != nil {
			return r, err
		}
		if l.class != vPred || r.class != vPred {
			return l, fmt.Errorf("OR between values is not translated")
		}
		l = vexpr{sql: l.sql + " OR " + r.sql, class: vPred, agg: l.agg || r.agg}
	}
	return l, nil
}

func (p *vparser) andExpr(scope []*rel) (vexpr, error) {
	l, err := p.notExpr(scope)
	if err != nil {
		return l, err
	}
	for p.at("AND") {
		p.pos++
		r, err := p.notExpr(scope)
		if err != nil {
			return r, err
		}
		if l.class != vPred || r.class != vPred {
			return l, fmt.Errorf("AND between values is not translated")
		}
		l = vexpr{sql: l.sql + " AND " + r.sql, class: vPred, agg: l.agg || r.agg}
	}
	return l, nil
}

func (p *vparser) notExpr(scope []*rel) (vexpr, error) {
	if p.accept("NOT") {
		e, err := p.notExpr(scope)
		if err != nil {
			return e, err
		}
		if e.class != vPred {
			return e, fmt.Errorf("NOT of a value is not translated")
		}
		return vexpr{sql: "NOT " + e.sql, class: vPred, agg: e.agg}, nil
	}
	return p.predicate(scope)
}

var compareOps = map[string]string{"=": "=", "<>": "<>", "!=": "<>", "<": "<", ">": ">", "<=": "<=", ">=": ">=", "!<": ">=", "!>": "<="}

// predicate reads a comparison, IN, BETWEEN, IS [NOT] NULL, or a value.
func (p *vparser) predicate(scope []*rel) (vexpr, error) {
	if p.at("EXISTS") {
		return vexpr{}, fmt.Errorf("EXISTS (a subquery) is not translated")
	}
	l, err := p.arith(scope)
	if err != nil {
		return l, err
	}
	t := p.peek()
	if op, ok := compareOps[t.text]; ok && t.kind == tokOp {
		p.pos++
		if p.at("ALL") || p.at("ANY") || p.at("SOME") {
			return l, fmt.Errorf("%s (a subquery) is not translated", strings.ToUpper(p.peek().text))
		}
		r, err := p.arith(scope)
		if err != nil {
			return r, err
		}
		if err := compareOK(l, r, op); err != nil {
			return l, err
		}
		return vexpr{sql: l.sql + " " + op + " " + r.sql, class: vPred, agg: l.agg || r.agg}, nil
	}
	not := ""
	if p.at("NOT") && p.pos+1 < len(p.toks) && (p.toks[p.pos+1].is("IN") || p.toks[p.pos+1].is("BETWEEN") || p.toks[p.pos+1].is("LIKE")) {
		p.pos++
		not = "NOT "
	}
	switch {
	case p.accept("IS"):
		if p.accept("NOT") {
			not = "NOT "
		}
		if err := p.expect("NULL"); err != nil {
			return l, err
		}
		if l.class == vPred {
			return l, fmt.Errorf("IS NULL of a condition is not translated")
		}
		return vexpr{sql: l.sql + " IS " + not + "NULL", class: vPred, agg: l.agg}, nil
	case p.accept("IN"):
		if err := p.expect("("); err != nil {
			return l, err
		}
		if p.at("SELECT") {
			return l, fmt.Errorf("IN (a subquery) is not translated")
		}
		var items []string
		agg := l.agg
		for {
			r, err := p.arith(scope)
			if err != nil {
				return r, err
			}
			if err := compareOK(l, r, "IN"); err != nil {
				return l, err
			}
			items = append(items, r.sql)
			agg = agg || r.agg
			if !p.acceptOp(",") {
				break
			}
		}
		if err := p.expect(")"); err != nil {
			return l, err
		}
		return vexpr{sql: l.sql + " " + not + "IN (" + strings.Join(items, ", ") + ")", class: vPred, agg: agg}, nil
	case p.accept("BETWEEN"):
		lo, err := p.arith(scope)
		if err != nil {
			return lo, err
		}
		if err := p.expect("AND"); err != nil {
			return lo, err
		}
		hi, err := p.arith(scope)
		if err != nil {
			return hi, err
		}
		for _, r := range []vexpr{lo, hi} {
			if err := compareOK(l, r, "BETWEEN"); err != nil {
				return l, err
			}
		}
		return vexpr{sql: l.sql + " " + not + "BETWEEN " + lo.sql + " AND " + hi.sql, class: vPred, agg: l.agg || lo.agg || hi.agg}, nil
	case p.at("LIKE"):
		return l, fmt.Errorf("LIKE is not translated: SQL Server matches under the column's collation%s, with [ ] classes PostgreSQL's LIKE does not have", collNote(l.coll))
	}
	return l, nil
}

// compareOK accepts a comparison both engines make alike: numbers with
// numbers, dates and times with each other, bits with bits. Strings are
// compared under a collation and without trailing spaces in SQL Server;
// a string literal compared with a date is read under DATEFORMAT.
func compareOK(l, r vexpr, op string) error {
	if l.class == vNull || r.class == vNull {
		return fmt.Errorf("%s NULL is not translated (its meaning depends on ANSI_NULLS)", op)
	}
	if l.class == vPred || r.class == vPred {
		return fmt.Errorf("comparing conditions is not translated")
	}
	for _, e := range []vexpr{l, r} {
		if err := comparable(e, "comparing ("+op+")"); err != nil {
			return err
		}
	}
	if l.class == vTime && r.class == vTime && (l.tname == "datetimeoffset") != (r.tname == "datetimeoffset") {
		return fmt.Errorf("comparing (%s) a datetimeoffset with a local date or time is not translated (PostgreSQL reads the local one in the session's time zone)", op)
	}
	num := func(c vclass) bool { return c == vInt || c == vDec || c == vFloat }
	if (num(l.class) && num(r.class)) || l.class == r.class {
		return nil
	}
	return fmt.Errorf("comparing (%s) values of different types is not translated", op)
}

// arith reads + and - over terms.
func (p *vparser) arith(scope []*rel) (vexpr, error) {
	l, err := p.term(scope)
	if err != nil {
		return l, err
	}
	for p.atOp("+") || p.atOp("-") {
		op := p.peek().text
		p.pos++
		r, err := p.term(scope)
		if err != nil {
			return r, err
		}
		if l, err = combine(l, op, r); err != nil {
			return l, err
		}
	}
	if t := p.peek(); t.kind == tokOp && (t.text == "&" || t.text == "|" || t.text == "^") {
		return l, fmt.Errorf("bitwise %s is not translated", t.text)
	}
	if p.at("COLLATE") {
		return l, fmt.Errorf("COLLATE is not translated")
	}
	return l, nil
}

func (p *vparser) term(scope []*rel) (vexpr, error) {
	l, err := p.unary(scope)
	if err != nil {
		return l, err
	}
	for p.atOp("*") || p.atOp("/") || p.atOp("%") {
		op := p.peek().text
		p.pos++
		r, err := p.unary(scope)
		if err != nil {
			return r, err
		}
		if l, err = combine(l, op, r); err != nil {
			return l, err
		}
	}
	return l, nil
}

// combine applies an arithmetic operator: computed.go's rules for
// integers, decimals and strings (+ is || only between two strings known
// as such, never char(n)), IEEE arithmetic for floats.
func combine(l vexpr, op string, r vexpr) (vexpr, error) {
	known := func(c vclass) bool { return c == vInt || c == vDec || c == vStr }
	agg := l.agg || r.agg
	switch {
	case l.class == vFloat || r.class == vFloat:
		other := r
		if l.class != vFloat {
			other = l
		}
		if (other.class != vFloat && other.class != vInt) || op == "%" {
			return l, fmt.Errorf("%s between a float and a value of another type is not translated", op)
		}
		return vexpr{sql: l.sql + " " + op + " " + r.sql, class: vFloat, agg: agg}, nil
	case known(l.class) && known(r.class):
		if l.char || r.char {
			return l, fmt.Errorf("+ on char(n) is not translated: PostgreSQL's || drops its padding")
		}
		lt, rt := l.t, r.t
		lt.sql, rt.sql = l.sql, r.sql
		out, err := arith(lt, op, rt)
		if err != nil {
			return l, fmt.Errorf("%v: not translated", err)
		}
		e := vexpr{sql: out.sql, t: out, agg: agg}
		switch out.class {
		case classInt:
			e.class = vInt
		case classDec:
			e.class = vDec
		default:
			e.class = vStr
		}
		return e, nil
	}
	if op == "+" {
		return l, fmt.Errorf("+ on values not known to be both numbers or both strings is not translated")
	}
	return l, fmt.Errorf("%s on values not known to be numbers is not translated", op)
}

func (p *vparser) unary(scope []*rel) (vexpr, error) {
	if p.atOp("-") || p.atOp("+") {
		op := p.peek().text
		p.pos++
		e, err := p.unary(scope)
		if err != nil {
			return e, err
		}
		if e.class != vInt && e.class != vDec && e.class != vFloat {
			return e, fmt.Errorf("unary %s on a value not known to be a number is not translated", op)
		}
		if e.t.tiny && op == "-" {
			return e, fmt.Errorf("unary minus on a tinyint is not translated")
		}
		if op == "-" {
			e.sql = "(-" + e.sql + ")"
		}
		e.t.literal = false
		return e, nil
	}
	if p.atOp("~") {
		return vexpr{}, fmt.Errorf("bitwise ~ is not translated")
	}
	return p.primary(scope)
}

func (p *vparser) primary(scope []*rel) (vexpr, error) {
	t := p.peek()
	switch t.kind {
	case tokNumber:
		p.pos++
		if strings.HasPrefix(strings.ToLower(t.text), "0x") {
			return vexpr{}, fmt.Errorf("binary literal %s is not translated", t.text)
		}
		if !numberRE.MatchString(t.text) {
			return vexpr{}, fmt.Errorf("number %s is not translated", t.text)
		}
		n, err := numberLiteral(t.text)
		if err != nil {
			return vexpr{}, fmt.Errorf("%v is not translated", err)
		}
		e := vexpr{sql: n.sql, t: n, class: vInt}
		if n.class == classDec {
			e.class = vDec
		}
		return e, nil
	case tokString:
		p.pos++
		body := t.text
		if t.unicode {
			body = body[1:]
		} else {
			for i := 0; i < len(body); i++ {
				if body[i] >= 0x80 {
					return vexpr{}, fmt.Errorf("non-Unicode string literal %s with non-ASCII characters (read in the database's code page) is not translated", t.text)
				}
			}
		}
		n := len([]rune(strings.ReplaceAll(body[1:len(body)-1], "''", "'")))
		return vexpr{sql: body, class: vStr, t: typed{sql: body, class: classStr, length: n, unicode: t.unicode, literal: true}}, nil
	case tokOp:
		if t.text != "(" {
			return vexpr{}, p.unexpected("unexpected")
		}
		p.pos++
		if p.at("SELECT") {
			return vexpr{}, fmt.Errorf("a subquery in an expression is not translated")
		}
		e, err := p.expr(scope)
		if err != nil {
			return e, err
		}
		if err := p.expect(")"); err != nil {
			return e, err
		}
		e.sql = "(" + e.sql + ")"
		e.t.literal = false
		return e, nil
	}
	if !t.quoted {
		switch strings.ToUpper(t.text) {
		case "NULL":
			p.pos++
			return vexpr{sql: "NULL", class: vNull}, nil
		case "CASE":
			p.pos++
			return p.caseExpr(scope)
		case "CURRENT_TIMESTAMP":
			p.pos++
			return vexpr{sql: "LOCALTIMESTAMP(3)", class: vTime, tname: "datetime"}, nil
		}
		if isKeyword(t) {
			if p.pos+1 < len(p.toks) && p.toks[p.pos+1].text == "(" {
				return vexpr{}, fmt.Errorf("function %s is not translated", strings.ToUpper(t.text))
			}
			return vexpr{}, p.unexpected("unexpected")
		}
		if strings.HasPrefix(t.text, "@") {
			return vexpr{}, fmt.Errorf("variable %s is not translated", t.text)
		}
	}
	if p.pos+1 < len(p.toks) && p.toks[p.pos+1].text == "(" && p.toks[p.pos+1].kind == tokOp {
		p.pos += 2
		return p.call(t, scope)
	}
	return p.column(scope)
}

// column resolves [qualifier.]column against the FROM items in scope.
func (p *vparser) column(scope []*rel) (vexpr, error) {
	var parts []string
	for {
		t := p.peek()
		if t.kind != tokIdent {
			return vexpr{}, p.unexpected("expected a column")
		}
		p.pos++
		parts = append(parts, t.text)
		if !p.atOp(".") {
			break
		}
		p.pos++
	}
	if p.atOp("(") {
		return vexpr{}, fmt.Errorf("function %s is not translated", strings.Join(parts, "."))
	}
	col := parts[len(parts)-1]
	qual := strings.Join(parts[:len(parts)-1], ".")
	var found *relCol
	var in *rel
	for _, r := range scope {
		if qual != "" && !containsFold(r.names, qual) {
			continue
		}
		for i := range r.cols {
			if strings.EqualFold(r.cols[i].name, col) {
				if found != nil {
					return vexpr{}, fmt.Errorf("column %s is ambiguous", strings.Join(parts, "."))
				}
				found, in = &r.cols[i], r
			}
		}
	}
	if found == nil {
		return vexpr{}, fmt.Errorf("column %s is not one caravan found in the tables and views the query uses", strings.Join(parts, "."))
	}
	e := found.e
	e.sql = in.ref + "." + schema.Quote(found.target)
	e.agg = false
	e.t.literal = false
	return e, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// caseExpr reads CASE [x] WHEN ... THEN ... [ELSE ...] END; its branches
// must be of one kind (SQL Server converts them to the highest one,
// PostgreSQL to a common one).
func (p *vparser) caseExpr(scope []*rel) (vexpr, error) {
	var b strings.Builder
	b.WriteString("CASE")
	var subject *vexpr
	if !p.at("WHEN") {
		s, err := p.arith(scope)
		if err != nil {
			return s, err
		}
		subject = &s
		b.WriteString(" " + s.sql)
	}
	out := vexpr{class: vNull}
	agg := false
	branch := func(e vexpr) error {
		agg = agg || e.agg
		switch {
		case e.class == vPred:
			return fmt.Errorf("a condition as a CASE result is not translated")
		case e.class == vNull:
		case out.class == vNull:
			out = e
		case out.class != e.class || out.class == vDec || out.class == vUnknown:
			return fmt.Errorf("CASE results of different types are not translated")
		case out.class == vStr:
			out.char = out.char || e.char
			if e.t.length < 0 || out.t.length < 0 {
				out.t.length = -1
			} else {
				out.t.length = max(out.t.length, e.t.length)
			}
			out.t.unicode = out.t.unicode || e.t.unicode
		case out.class == vInt:
			out.t.prec = max(out.t.prec, e.t.prec)
			out.t.tiny = out.t.tiny && e.t.tiny
		}
		return nil
	}
	for p.accept("WHEN") {
		var cond vexpr
		var err error
		if subject != nil {
			if cond, err = p.arith(scope); err == nil {
				err = compareOK(*subject, cond, "CASE ... WHEN")
			}
		} else if cond, err = p.expr(scope); err == nil && cond.class != vPred {
			err = fmt.Errorf("a value where a condition is expected is not translated")
		}
		if err != nil {
			return cond, err
		}
		agg = agg || cond.agg
		if err := p.expect("THEN"); err != nil {
			return cond, err
		}
		r, err := p.arith(scope)
		if err != nil {
			return r, err
		}
		if err := branch(r); err != nil {
			return r, err
		}
		b.WriteString(" WHEN " + cond.sql + " THEN " + r.sql)
	}
	if p.accept("ELSE") {
		r, err := p.arith(scope)
		if err != nil {
			return r, err
		}
		if err := branch(r); err != nil {
			return r, err
		}
		b.WriteString(" ELSE " + r.sql)
	}
	if err := p.expect("END"); err != nil {
		return out, err
	}
	b.WriteString(" END")
	out.sql, out.agg, out.coll = b.String(), agg, ""
	out.t.literal = false
	if out.class == vNull {
		out.class = vUnknown
	}
	return out, nil
}

// args reads a call's arguments up to its closing parenthesis.
func (p *vparser) args(scope []*rel) ([]vexpr, error) {
	var out []vexpr
	if p.acceptOp(")") {
		return out, nil
	}
	for {
		e, err := p.expr(scope)
		if err != nil {
			return nil, err
		}
		if e.class == vPred {
			return nil, fmt.Errorf("a condition as a function argument is not translated")
		}
		out = append(out, e)
		if p.acceptOp(")") {
			return out, nil
		}
		if err := p.expect(","); err != nil {
			return nil, err
		}
	}
}

// call translates a function call; the opening parenthesis is read.
func (p *vparser) call(name vtok, scope []*rel) (vexpr, error) {
	fn := strings.ToUpper(name.text)
	if name.quoted {
		return vexpr{}, fmt.Errorf("function %s is not translated", name.text)
	}
	var e vexpr
	var err error
	switch fn {
	case "CAST":
		e, err = p.cast(scope)
	case "CONVERT":
		e, err = p.convert(scope)
	case "COUNT", "SUM", "MIN", "MAX", "AVG":
		e, err = p.aggregate(fn, scope)
	default:
		var args []vexpr
		if args, err = p.args(scope); err == nil {
			e, err = scalarCall(fn, args)
		}
	}
	if err != nil {
		return e, err
	}
	if p.at("OVER") {
		return e, fmt.Errorf("window functions (OVER) are not translated")
	}
	if p.at("WITHIN") {
		return e, fmt.Errorf("WITHIN GROUP is not translated")
	}
	return e, nil
}

func anyAgg(args []vexpr) bool {
	for _, a := range args {
		if a.agg {
			return true
		}
	}
	return false
}

// scalarCall translates the scalar functions caravan knows the PostgreSQL
// equivalent of for the argument types given.
func scalarCall(fn string, args []vexpr) (vexpr, error) {
	argc := func(n int) error {
		if len(args) != n {
			return fmt.Errorf("%s with %d arguments is not translated", fn, len(args))
		}
		return nil
	}
	agg := anyAgg(args)
	switch fn {
	case "GETDATE":
		// datetime, the type caravan maps to timestamp(3)
		return vexpr{sql: "LOCALTIMESTAMP(3)", class: vTime, tname: "datetime"}, argc(0)
	case "SYSDATETIME":
		return vexpr{sql: "LOCALTIMESTAMP", class: vTime, tname: "datetime2"}, argc(0)
	case "GETUTCDATE":
		return vexpr{sql: "CAST(now() AT TIME ZONE 'utc' AS timestamp(3))", class: vTime, tname: "datetime"}, argc(0)
	case "SYSUTCDATETIME":
		return vexpr{sql: "(now() AT TIME ZONE 'utc')", class: vTime, tname: "datetime2"}, argc(0)
	case "NEWID":
		return vexpr{sql: "gen_random_uuid()", class: vUnknown}, argc(0)
	case "ISNULL":
		if err := argc(2); err != nil {
			return vexpr{}, err
		}
		a, b := args[0], args[1]
		known := a.class == vInt || a.class == vDec || a.class == vStr
		if !known || !(b.class == vInt || b.class == vDec || b.class == vStr) || !isnullFits(a.t, b.t) || a.char {
			return vexpr{}, fmt.Errorf("ISNULL whose replacement might not keep its value in the first argument's type is not translated")
		}
		a.sql, a.agg = "COALESCE("+a.sql+", "+b.sql+")", agg
		a.t.literal = false
		return a, nil
	case "COALESCE":
		if len(args) < 2 {
			return vexpr{}, fmt.Errorf("COALESCE with %d arguments", len(args))
		}
		out := args[0]
		parts := make([]string, len(args))
		for i, a := range args {
			if a.class != out.class || (a.class != vInt && a.class != vStr) || a.char {
				return vexpr{}, fmt.Errorf("COALESCE over values other than integers or strings of one kind is not translated")
			}
			out.t.prec = max(out.t.prec, a.t.prec)
			if a.t.length < 0 || out.t.length < 0 {
				out.t.length = -1
			} else {
				out.t.length = max(out.t.length, a.t.length)
			}
			out.t.unicode = out.t.unicode || a.t.unicode
			out.t.tiny = out.t.tiny && a.t.tiny
			parts[i] = a.sql
		}
		out.sql, out.agg, out.t.literal = "COALESCE("+strings.Join(parts, ", ")+")", agg, false
		return out, nil
	case "LEN":
		if err := argc(1); err != nil {
			return vexpr{}, err
		}
		a := args[0]
		if a.class != vStr {
			return vexpr{}, fmt.Errorf("LEN of a value not known to be a string is not translated")
		}
		if a.t.unicode && !strings.Contains(strings.ToUpper(a.coll), "_SC") && !strings.Contains(strings.ToUpper(a.coll), "UTF8") {
			return vexpr{}, fmt.Errorf("LEN of an nvarchar is not translated: under collation %q it counts a character outside the BMP as two", a.coll)
		}
		// LEN ignores trailing spaces, as rtrim drops them
		return vexpr{sql: "length(rtrim(" + a.sql + "))", class: vInt, t: typed{class: classInt, prec: 10}, agg: agg}, nil
	case "DATALENGTH":
		if err := argc(1); err != nil {
			return vexpr{}, err
		}
		if args[0].tname != "binary" && args[0].tname != "varbinary" {
			return vexpr{}, fmt.Errorf("DATALENGTH of a value other than a binary is not translated (it counts bytes of SQL Server's encoding)")
		}
		return vexpr{sql: "octet_length(" + args[0].sql + ")", class: vInt, t: typed{class: classInt, prec: 10}, agg: agg}, nil
	case "CHARINDEX":
		if err := argc(2); err != nil {
			return vexpr{}, err
		}
		a, b := args[0], args[1]
		if !a.t.literal || a.class != vStr || a.t.length == 0 || b.class != vStr || !exactCollation(b.coll) {
			return vexpr{}, fmt.Errorf("CHARINDEX is translated only for a non-empty string literal in a column of a case- and accent-sensitive or binary collation (here %q)", b.coll)
		}
		return vexpr{sql: "strpos(" + b.sql + ", " + a.sql + ")", class: vInt, t: typed{class: classInt, prec: 10}, agg: agg}, nil
	case "ABS", "FLOOR", "CEILING":
		if err := argc(1); err != nil {
			return vexpr{}, err
		}
		a := args[0]
		if a.class != vInt && a.class != vDec && a.class != vFloat {
			return vexpr{}, fmt.Errorf("%s of a value not known to be a number is not translated", fn)
		}
		if a.class == vInt && fn != "ABS" {
			return a, nil // an integer is its own floor and ceiling
		}
		a.sql, a.agg, a.t.literal = strings.ToLower(fn)+"("+a.sql+")", agg, false
		if a.class == vDec && fn != "ABS" {
			a.t.scale = 0
		}
		return a, nil
	case "YEAR", "MONTH", "DAY":
		if err := argc(1); err != nil {
			return vexpr{}, err
		}
		a := args[0]
		if a.class != vTime || a.tname == "datetimeoffset" || a.tname == "time" || a.tname == "" {
			return vexpr{}, fmt.Errorf("%s of a value not known to be a date or a local date and time is not translated", fn)
		}
		return vexpr{sql: "CAST(EXTRACT(" + fn + " FROM " + a.sql + ") AS integer)", class: vInt, t: typed{class: classInt, prec: 10}, agg: agg}, nil
	}
	return vexpr{}, fmt.Errorf("function %s is not translated", fn)
}

// exactCollation says whether a collation compares case and accents as
// they are (CHARINDEX then finds what strpos finds).
func exactCollation(c string) bool {
	u := strings.ToUpper(c)
	return strings.HasSuffix(u, "_BIN") || strings.HasSuffix(u, "_BIN2") || strings.Contains(u, "_CS_AS")
}

// aggregate translates COUNT, SUM, MIN, MAX and AVG where both engines
// return the same value.
func (p *vparser) aggregate(fn string, scope []*rel) (vexpr, error) {
	if fn == "COUNT" && p.acceptOp("*") {
		if err := p.expect(")"); err != nil {
			return vexpr{}, err
		}
		return vexpr{sql: "count(*)", class: vInt, t: typed{class: classInt, prec: 19}, agg: true}, nil
	}
	distinct := p.accept("DISTINCT")
	if !distinct {
		p.accept("ALL")
	}
	args, err := p.args(scope)
	if err != nil {
		return vexpr{}, err
	}
	if len(args) != 1 {
		return vexpr{}, fmt.Errorf("%s with %d arguments is not translated", fn, len(args))
	}
	a := args[0]
	if a.agg {
		return vexpr{}, fmt.Errorf("an aggregate of an aggregate is not translated")
	}
	if distinct || fn == "MIN" || fn == "MAX" {
		if err := comparable(a, fn+map[bool]string{true: " DISTINCT", false: ""}[distinct]); err != nil {
			return vexpr{}, err
		}
	}
	d := ""
	if distinct {
		d = "DISTINCT "
	}
	sql := strings.ToLower(fn) + "(" + d + a.sql + ")"
	switch fn {
	case "COUNT":
		return vexpr{sql: sql, class: vInt, t: typed{class: classInt, prec: 19}, agg: true}, nil
	case "MIN", "MAX":
		a.sql, a.agg, a.t.literal = sql, true, false
		return a, nil
	case "SUM":
		switch {
		case a.class == vInt && a.tname != "bigint" && !a.t.literal:
			// int in SQL Server (an error past it), bigint in PostgreSQL
			return vexpr{sql: sql, class: vInt, t: typed{class: classInt, prec: 19}, agg: true}, nil
		case a.class == vDec:
			return vexpr{sql: sql, class: vDec, t: typed{class: classDec, prec: 38, scale: a.t.scale}, agg: true}, nil
		case a.class == vFloat:
			return vexpr{sql: sql, class: vFloat, agg: true}, nil
		}
		return vexpr{}, fmt.Errorf("SUM of a value other than an int, a decimal or a float is not translated")
	}
	if a.class != vFloat {
		return vexpr{}, fmt.Errorf("AVG of a value other than a float is not translated (SQL Server's result type differs)")
	}
	return vexpr{sql: sql, class: vFloat, agg: true}, nil
}

// cast reads CAST(x AS type).
func (p *vparser) cast(scope []*rel) (vexpr, error) {
	e, err := p.expr(scope)
	if err != nil {
		return e, err
	}
	if err := p.expect("AS"); err != nil {
		return e, err
	}
	to, err := p.typeName()
	if err != nil {
		return e, err
	}
	if err := p.expect(")"); err != nil {
		return e, err
	}
	return castTo(e, to)
}

// convert reads CONVERT(type, x); a style formats differently.
func (p *vparser) convert(scope []*rel) (vexpr, error) {
	to, err := p.typeName()
	if err != nil {
		return vexpr{}, err
	}
	if err := p.expect(","); err != nil {
		return vexpr{}, err
	}
	e, err := p.expr(scope)
	if err != nil {
		return e, err
	}
	if p.atOp(",") {
		return e, fmt.Errorf("CONVERT with a style is not translated")
	}
	if err := p.expect(")"); err != nil {
		return e, err
	}
	return castTo(e, to)
}

// typeName reads a T-SQL type name into caravan's type model.
func (p *vparser) typeName() (sqlType, error) {
	t := p.peek()
	if t.kind != tokIdent {
		return sqlType{}, p.unexpected("expected a type")
	}
	p.pos++
	text := strings.ToLower(t.text)
	if p.acceptOp("(") {
		var args []string
		for !p.atOp(")") {
			a := p.peek()
			if p.pos >= len(p.toks) || (a.kind != tokNumber && !a.is("max")) {
				return sqlType{}, p.unexpected("expected a type's length")
			}
			args = append(args, strings.ToLower(a.text))
			p.pos++
			p.acceptOp(",")
		}
		p.pos++
		text += "(" + strings.Join(args, ",") + ")"
	}
	st, err := parseSQLType(text)
	if err != nil {
		return sqlType{}, fmt.Errorf("cast to %s is not translated", text)
	}
	return st, nil
}

// castTo accepts the casts computed.go's castValue knows both engines do
// alike, and a date taken from a date or a local date and time.
func castTo(e vexpr, to sqlType) (vexpr, error) {
	pg := defaultPGType(to, false)
	if to.Name == "date" && e.class == vTime && (e.tname == "date" || e.tname == "datetime" || e.tname == "datetime2" || e.tname == "smalldatetime") {
		return vexpr{sql: "CAST(" + e.sql + " AS date)", class: vTime, tname: "date", agg: e.agg}, nil
	}
	target, err := classOf(to)
	if err != nil || !(e.class == vInt || e.class == vDec || e.class == vStr) || e.char || to.Name == "tinyint" {
		return vexpr{}, fmt.Errorf("CAST or CONVERT to %s is not translated for this value", to)
	}
	target.sql = pg
	src := e.t
	src.sql = e.sql
	out, err := castValue(src, target)
	if err != nil {
		return vexpr{}, fmt.Errorf("%v: not translated", err)
	}
	r := vexpr{sql: out.sql, t: out, agg: e.agg, tname: to.Name}
	switch out.class {
	case classInt:
		r.class = vInt
	case classDec:
		r.class = vDec
	default:
		r.class = vStr
		r.coll = e.coll
	}
	return r, nil
}
