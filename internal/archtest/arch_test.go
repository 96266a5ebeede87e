package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/dispatch24/dispatch24"

// violation is one broken rule: rule's name, the package (module-relative import path) or
// file (module-relative path) that breaks it, and what it reaches for.
type violation struct {
	rule, where, what string
}

func (v violation) String() string { return v.rule + ": " + v.where + " → " + v.what }

// stillMoving lists today's violations that issue 12's helpers are removing. The lead
// empties it as their branches merge; an entry that matches nothing fails the test.
var stillMoving = []violation{}

// familyOwners maps each table family's accessor on store.Executor to the one package that
// may call it (internal/store/driver.go, README "The map").
var familyOwners = map[string]string{
	"Accounts":    "internal/auth",
	"Surveys":     "internal/survey",
	"Submissions": "internal/submission",
	"Events":      "internal/outbox",
	"Webhooks":    "internal/endpoint",
	"Deliveries":  "internal/delivery",
	"Leases":      "internal/retention",
}

// txCrossings are the calls of another family's part that the map allows: each is inside
// the owner's transaction, where the other family's check or write must commit (or fail)
// with the owner's, which a call through the other owner's package could not join.
var txCrossings = []violation{
	// A user's survey assignments name surveys that exist (checked in the user's write).
	{"owner", "internal/auth/users.go", "Surveys()"},
	// An endpoint is created in a survey that exists.
	{"owner", "internal/endpoint/endpoint_store.go", "Surveys()"},
	// Intake reads the endpoints' version in the submission's transaction, so the event
	// carries the endpoints it was stored against.
	{"owner", "internal/submission/service.go", "Webhooks()"},
	// The operational events a batch of results writes (webhook.disabled,
	// delivery.exhausted) carry the webhooks version read in the batch's transaction, after
	// the disabling moved it.
	{"owner", "internal/delivery/delivery_store.go", "Webhooks()"},
	// Importing respondents, changing a password and deleting a respondent or a survey revoke
	// refresh tokens, and the deletions (erasure, CONTRACT §8) delete the submissions,
	// events and deliveries with the survey or respondent, whole or not at all.
	{"owner", "internal/survey/respondent_import.go", "Accounts()"},
	{"owner", "internal/survey/respondent_store.go", "Accounts()"},
	{"owner", "internal/survey/respondent_store.go", "Submissions()"},
	{"owner", "internal/survey/respondent_store.go", "Events()"},
	{"owner", "internal/survey/survey_store.go", "Accounts()"},
	{"owner", "internal/survey/survey_store.go", "Submissions()"},
	{"owner", "internal/survey/survey_store.go", "Events()"},
	{"owner", "internal/survey/survey_store.go", "Deliveries()"},
}

// benchHarnesses may use pgx and SQL: they stand outside the product and connect to
// PostgreSQL's maintenance database to create and drop their scratch databases, which no
// store API offers, and check their results with their own queries.
var benchHarnesses = []string{"bench/faults", "bench/intake", "bench/pipeline", "bench/ratelimit"}

type goPackage struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Deps       []string
	Error      *struct{ Err string }
}

func TestDependencyRules(t *testing.T) {
	root, pkgs := listModule(t)
	var got []violation
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		got = append(got, importRules(rel, p)...)
		for _, f := range p.GoFiles {
			file := filepath.Join(p.Dir, f)
			relFile, err := filepath.Rel(root, file)
			if err != nil {
				t.Fatal(err)
			}
			relFile = filepath.ToSlash(relFile)
			if under(relFile, "internal/store") {
				continue
			}
			if readsDialect(t, file) {
				got = append(got, violation{"dialect", relFile, ".Dialect"})
			}
			bench := slices.ContainsFunc(benchHarnesses, func(b string) bool { return under(relFile, b) })
			if lit := sqlLiteral(t, file); lit != "" && !bench {
				got = append(got, violation{"sql", relFile, "SQL"})
			}
			if !bench {
				for _, fam := range familyCalls(t, file) {
					if familyOwners[fam] != rel {
						got = append(got, violation{"owner", relFile, fam + "()"})
					}
				}
			}
		}
	}
	for _, v := range got {
		if !slices.Contains(stillMoving, v) && !slices.Contains(txCrossings, v) {
			t.Errorf("dependency rule broken (see the archtest package doc): %s", v)
		}
	}
	for _, v := range stillMoving {
		if !slices.Contains(got, v) {
			t.Errorf("stillMoving lists %s, which no longer happens: remove it", v)
		}
	}
	for _, v := range txCrossings {
		if !slices.Contains(got, v) {
			t.Errorf("txCrossings lists %s, which no longer happens: remove it", v)
		}
	}
}

// importRules checks package p (rel: its module-relative path) against the import rules.
func importRules(rel string, p goPackage) []violation {
	var out []violation
	for _, imp := range p.Imports {
		switch {
		case strings.HasPrefix(imp, "github.com/jackc/pgx"):
			if !under(rel, "internal/store/postgres") && !slices.Contains(benchHarnesses, rel) {
				out = append(out, violation{"pgx", rel, imp})
			}
		case imp == "modernc.org/sqlite" || strings.HasPrefix(imp, "modernc.org/sqlite/"):
			if !under(rel, "internal/store/sqlite") && !under(rel, "internal/store/postgres") {
				out = append(out, violation{"sqlite", rel, imp})
			}
		case under(rel, "pkg") && strings.HasPrefix(imp, module+"/internal/") && imp != module+"/internal/ids":
			out = append(out, violation{"pkg-internal", rel, strings.TrimPrefix(imp, module+"/")})
		}
	}
	// Dependencies, not only imports: a package must not reach internal/app (or endpoint the
	// engine) through another one either.
	for _, dep := range p.Deps {
		d := strings.TrimPrefix(dep, module+"/")
		if d == dep {
			continue
		}
		if d == "internal/app" && (under(rel, "pkg") || (under(rel, "internal") && !under(rel, "internal/app"))) {
			out = append(out, violation{"below-app", rel, d})
		}
		if d == "internal/dispatch" && under(rel, "internal/endpoint") {
			out = append(out, violation{"endpoint-dispatch", rel, d})
		}
	}
	return out
}

// familyCalls returns the table families whose accessor a Go file calls (a call without
// arguments of a method named like one of store.Executor's: db.Driver.Deliveries(),
// tx.Events()), each once, in the order first called. Other methods of those names take
// arguments (outbox.Archive.Events(ctx, ids)) and are not counted.
func familyCalls(t *testing.T, file string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parsing %s: %v", file, err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		c, ok := n.(*ast.CallExpr)
		if !ok || len(c.Args) > 0 {
			return true
		}
		if s, ok := c.Fun.(*ast.SelectorExpr); ok {
			if _, fam := familyOwners[s.Sel.Name]; fam && !slices.Contains(out, s.Sel.Name) {
				out = append(out, s.Sel.Name)
			}
		}
		return true
	})
	return out
}

// under reports whether the slash path p is dir or inside it.
func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// readsDialect reports whether a Go file selects a field or method named Dialect.
func readsDialect(t *testing.T, file string) bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parsing %s: %v", file, err)
	}
	found := false
	ast.Inspect(f, func(n ast.Node) bool {
		if s, ok := n.(*ast.SelectorExpr); ok && s.Sel.Name == "Dialect" {
			found = true
		}
		return !found
	})
	return found
}

// sqlKeywords start the string literals that sqlLiteral takes for SQL.
var sqlKeywords = []string{"SELECT ", "INSERT ", "UPDATE ", "DELETE ", "WITH ", "CREATE ", "DROP "}

// sqlLiteral returns the first string literal of a Go file that, trimmed and upper-cased,
// starts with an SQL keyword and a space ("" when none does). A keyword followed by a path
// ("DELETE /api/…") is a route pattern, not SQL.
func sqlLiteral(t *testing.T, file string) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parsing %s: %v", file, err)
	}
	found := ""
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return found == ""
		}
		v, err := strconv.Unquote(lit.Value)
		if err != nil {
			return true
		}
		if isSQL(v) {
			found = v
		}
		return found == ""
	})
	return found
}

// isSQL reports whether s, trimmed and upper-cased, starts with an SQL keyword and a space
// that no path follows. WITH also starts prose ("With no command, …"), so it counts only as
// a common table expression: WITH RECURSIVE, or WITH name AS.
func isSQL(s string) bool {
	u := strings.ToUpper(strings.TrimSpace(s))
	for _, k := range sqlKeywords {
		rest, ok := strings.CutPrefix(u, k)
		if !ok || strings.HasPrefix(strings.TrimSpace(rest), "/") {
			continue
		}
		if k == "WITH " {
			f := strings.Fields(rest)
			return len(f) > 0 && (f[0] == "RECURSIVE" || len(f) > 1 && strings.HasPrefix(f[1], "AS"))
		}
		return true
	}
	return false
}

// listModule lists every package of the module (production files; tests are out of scope:
// they may set up and check through raw SQL) and returns the module's root directory.
func listModule(t *testing.T) (string, []goPackage) {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Dir,GoFiles,Imports,Deps,Error", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []goPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list: %v", err)
		}
		if p.Error != nil {
			t.Fatalf("go list %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages in %s; is this the module root?", len(pkgs), root)
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].ImportPath < pkgs[j].ImportPath })
	return root, pkgs
}

// TestRulesCatchViolations: each rule fires on a package that breaks it and stays quiet on one
// that keeps it, so a passing TestDependencyRules means something.
func TestRulesCatchViolations(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rel  string
		p    goPackage
		want string
	}{
		{"internal/outbox", goPackage{Imports: []string{"github.com/jackc/pgx/v5/pgconn"}}, "pgx: internal/outbox → github.com/jackc/pgx/v5/pgconn"},
		{"internal/store/postgres", goPackage{Imports: []string{"github.com/jackc/pgx/v5"}}, ""},
		{"internal/store", goPackage{Imports: []string{"modernc.org/sqlite"}}, "sqlite: internal/store → modernc.org/sqlite"},
		{"internal/store/sqlite", goPackage{Imports: []string{"modernc.org/sqlite/lib"}}, ""},
		{"internal/survey", goPackage{Deps: []string{module + "/internal/app"}}, "below-app: internal/survey → internal/app"},
		{"pkg/webhook", goPackage{Deps: []string{module + "/internal/app"}}, "below-app: pkg/webhook → internal/app"},
		{"cmd/api", goPackage{Deps: []string{module + "/internal/app"}}, ""},
		{"internal/app", goPackage{Deps: []string{module + "/internal/dispatch"}}, ""},
		{"internal/endpoint", goPackage{Deps: []string{module + "/internal/dispatch"}}, "endpoint-dispatch: internal/endpoint → internal/dispatch"},
		{"pkg/events", goPackage{Imports: []string{module + "/internal/ids"}}, ""},
		{"pkg/events", goPackage{Imports: []string{module + "/internal/store"}}, "pkg-internal: pkg/events → internal/store"},
	} {
		var got []string
		for _, v := range importRules(tc.rel, tc.p) {
			got = append(got, v.String())
		}
		if strings.Join(got, "; ") != tc.want {
			t.Errorf("%s %+v: violations %q, want %q", tc.rel, tc.p, got, tc.want)
		}
	}
	dir := t.TempDir()
	for src, want := range map[string]bool{
		"package p\nfunc f(db struct{ Dialect string }) string { return db.Dialect }\n": true,
		"package p\nfunc f(db struct{ Driver string }) string { return db.Driver }\n":   false,
	} {
		file := filepath.Join(dir, "f.go")
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := readsDialect(t, file); got != want {
			t.Errorf("readsDialect(%q) = %v, want %v", src, got, want)
		}
	}
	for src, want := range map[string]string{
		"package p\nfunc f(x interface{ Deliveries() int }) int { return x.Deliveries() + x.Deliveries() }\n": "Deliveries",
		"package p\nfunc f(a interface{ Events(int) int }) int { return a.Events(1) }\n":                      "",
	} {
		file := filepath.Join(dir, "o.go")
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(familyCalls(t, file), ","); got != want {
			t.Errorf("familyCalls(%q) = %q, want %q", src, got, want)
		}
	}
	for src, want := range map[string]string{
		"package p\nconst q = `\n\tselect id FROM t`\n":                            "\n\tselect id FROM t",
		"package p\nvar q = \"DELETE FROM t WHERE id = $1\"\n":                     "DELETE FROM t WHERE id = $1",
		"package p\nfunc f() string { return \"WITH x AS (SELECT 1) \" + \"\" }\n": "WITH x AS (SELECT 1) ",
		"package p\nvar route = \"DELETE /api/admin/users/{id}\"\n":                "",
		"package p\nvar msg = \"selected items\"\n":                                "",
		"package p\nvar msg = \"\\nWith no command, it runs the workers.\"\n":      "",
	} {
		file := filepath.Join(dir, "s.go")
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := sqlLiteral(t, file); got != want {
			t.Errorf("sqlLiteral(%q) = %q, want %q", src, got, want)
		}
	}
}
