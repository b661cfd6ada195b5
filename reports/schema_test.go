package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rehearse-dev/rehearse/results"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The schema is generated from the Go types the results file is encoded
// from, with their doc comments as descriptions, so it cannot say something
// the code does not do. This test fails when results.schema.json is stale.
func TestSchemaUpToDate(t *testing.T) {
	got, err := generateSchema()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("results.schema.json", got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(got, schemaJSON) {
		t.Fatal("results.schema.json is out of date with package results: run go test ./reports -run TestSchemaUpToDate -update (and bump results.Version if a field changed meaning or went away)")
	}
}

const schemaDescription = "The results of a rehearse run (rehearse run --out, or results.json of --report-dir): every measurement the reports are made from. " +
	"Versioned: `version` changes when a field changes meaning or goes away; readers refuse versions they do not know, and unknown fields. " +
	"Times relative to the operation are in milliseconds (float); durations in nanoseconds (integer); timestamps RFC 3339. Secrets appear only as fingerprints."

func generateSchema() ([]byte, error) {
	docs, err := fieldDocs(filepath.Join("..", "results"))
	if err != nil {
		return nil, err
	}
	g := &schemaGen{docs: docs, defs: map[string]any{}}
	root := g.object(reflect.TypeFor[results.RunFile]())
	root["$schema"] = "http://json-schema.org/draft-07/schema#"
	root["$id"] = "https://rehearse.dev/schemas/results.schema.json"
	root["title"] = "rehearse results"
	root["description"] = schemaDescription
	root["definitions"] = g.defs
	b, err := json.MarshalIndent(root, "", "  ")
	return append(b, '\n'), err
}

// constraints the Go types cannot express (the enums come from enums).
var schemaExtras = map[string]map[string]any{
	"RunFile.version": {"const": results.Version},
}

type schemaGen struct {
	docs map[string]string // "Type.Field" → doc comment
	defs map[string]any
}

var (
	timeType     = reflect.TypeOf(time.Time{})
	durationType = reflect.TypeOf(time.Duration(0))
)

func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	required := []string{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		omitempty := strings.Contains(opts, "omitempty")
		p := g.typeSchema(f.Type, !omitempty)
		if doc := g.docs[t.Name()+"."+f.Name]; doc != "" {
			if enumDoc, ok := p["description"].(string); ok && enumDoc != "" && f.Type.Kind() == reflect.String {
				doc += " " + enumDoc
			}
			if ref, ok := p["$ref"]; ok { // draft-07 ignores what stands beside a $ref
				p = map[string]any{"allOf": []any{map[string]any{"$ref": ref}}}
			}
			p["description"] = doc
		}
		if f.Type == durationType {
			p["description"] = strings.TrimSpace(p["description"].(string) + " (nanoseconds)")
		}
		for k, v := range schemaExtras[t.Name()+"."+name] {
			p[k] = v
		}
		props[name] = p
		if !omitempty {
			required = append(required, name)
		}
	}
	return map[string]any{"type": "object", "properties": props, "required": required, "additionalProperties": false}
}

// typeSchema maps a Go type to its JSON encoding; nullable is set for
// fields always written, where a nil slice encodes as null.
func (g *schemaGen) typeSchema(t reflect.Type, nullable bool) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == durationType:
		return map[string]any{"type": "integer", "description": ""}
	}
	if e, ok := enums[t]; ok {
		return g.enumSchema(t, e)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.typeSchema(t.Elem(), false)
	case reflect.Struct:
		if _, ok := g.defs[t.Name()]; !ok {
			g.defs[t.Name()] = nil // placeholder against recursion
			g.defs[t.Name()] = g.object(t)
		}
		return map[string]any{"$ref": "#/definitions/" + t.Name()}
	case reflect.Slice:
		s := map[string]any{"type": "array", "items": g.typeSchema(t.Elem(), false)}
		if nullable {
			s["type"] = []string{"array", "null"}
		}
		return s
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	}
	return map[string]any{}
}

// enumSchema lists an enum's values, described by its type's and its
// constants' comments.
func (g *schemaGen) enumSchema(t reflect.Type, e enum) map[string]any {
	values := e.values
	var desc []string
	if e.empty {
		values = append([]string{""}, values...)
		desc = append(desc, `"": not recorded`)
	}
	for _, v := range e.values {
		if d := g.docs[t.Name()+"="+v]; d != "" {
			desc = append(desc, fmt.Sprintf("%q: %s", v, d))
		}
	}
	doc := g.docs[t.Name()]
	if len(desc) > 0 {
		doc += " " + strings.Join(desc, "; ") + "."
	}
	return map[string]any{"type": "string", "enum": values, "description": strings.TrimSpace(doc)}
}

// fieldDocs reads the doc comments of dir's Go files: "Type.Field" → the
// field's doc and line comment, "Type" → the type's doc, and
// "Type=value" → the comment of a constant of that type and value.
func fieldDocs(dir string) (map[string]string, error) {
	docs := map[string]string{}
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		for _, decl := range f.Decls {
			if gd, ok := decl.(*ast.GenDecl); ok {
				declDocs(gd, docs)
			}
		}
	}
	return docs, nil
}

func declDocs(gd *ast.GenDecl, docs map[string]string) {
	for _, spec := range gd.Specs {
		switch sp := spec.(type) {
		case *ast.TypeSpec:
			doc := sp.Doc
			if doc == nil && len(gd.Specs) == 1 {
				doc = gd.Doc
			}
			setDoc(docs, sp.Name.Name, doc.Text())
			if st, ok := sp.Type.(*ast.StructType); ok {
				for _, fld := range st.Fields.List {
					for _, n := range fld.Names {
						setDoc(docs, sp.Name.Name+"."+n.Name, fld.Doc.Text()+" "+fld.Comment.Text())
					}
				}
			}
		case *ast.ValueSpec:
			typ, ok := sp.Type.(*ast.Ident)
			if !ok || len(sp.Values) != 1 {
				continue
			}
			if lit, ok := sp.Values[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				value, _ := strconv.Unquote(lit.Value)
				text := strings.TrimPrefix(strings.TrimSpace(sp.Doc.Text()+" "+sp.Comment.Text()), sp.Names[0].Name+":")
				setDoc(docs, typ.Name+"="+value, strings.TrimSuffix(strings.TrimSpace(text), "."))
			}
		}
	}
}

// setDoc keeps a comment on one line, without the Go name it starts with.
func setDoc(docs map[string]string, key, text string) {
	if text = strings.Join(strings.Fields(text), " "); text != "" {
		docs[key] = text
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("results.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("results.schema.json")
	if err != nil {
		t.Fatalf("the shipped schema does not compile: %v", err)
	}
	return s
}

func validateJSON(s *jsonschema.Schema, data []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

// The JSON of a real run, plain and normalized, is valid against the
// published schema, and reads back to the same results.
func TestJSONMatchesSchema(t *testing.T) {
	rf := realRun(t)
	s := compileSchema(t)
	for _, normalize := range []bool{false, true} {
		data := render(t, "json", rf, Options{Normalize: normalize})
		if err := validateJSON(s, data); err != nil {
			t.Errorf("normalize=%t: results JSON is not valid against results.schema.json:\n%v", normalize, err)
		}
		back, err := ReadJSON(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("normalize=%t: ReadJSON of our own output: %v", normalize, err)
		}
		if !normalize && !bytes.Equal(render(t, "json", back, Options{}), data) {
			t.Error("json → ReadJSON → json is not the identity")
		}
	}
}

// Each way a results file can be wrong is caught by the schema and by
// ReadJSON, with a message that says what is wrong.
func TestBrokenResultsAreRejected(t *testing.T) {
	checkBrokenResultsRejected(t, compileSchema(t), render(t, "json", realRun(t), Options{}))
}

func checkBrokenResultsRejected(t *testing.T, s *jsonschema.Schema, good []byte) {
	t.Helper()
	cases := []struct {
		name   string
		change func(m map[string]any)
		msg    string
	}{
		{"missing results", func(m map[string]any) { delete(m, "results") }, ""},
		{"older version", func(m map[string]any) { m["version"] = 1 }, "results format version 1 is not supported: this rehearse reads version 2; render it with the rehearse that wrote it, or run the scenarios again"},
		{"newer version", func(m map[string]any) { m["version"] = 3 }, "results format version 3 is not supported: this rehearse reads version 2"},
		{"no version", func(m map[string]any) { delete(m, "version") }, `no "version" field`},
		{"unknown field", func(m map[string]any) { m["colour"] = "blue" }, `unknown field "colour"`},
		{"missing required field of a result", func(m map[string]any) {
			delete(m["results"].([]any)[0].(map[string]any), "status")
		}, ""},
		{"unknown status", func(m map[string]any) { m["results"].([]any)[0].(map[string]any)["status"] = "flaky" }, `status "flaky", want "passed", "failed" or "error"`},
		{"missing status", func(m map[string]any) { delete(m["results"].([]any)[0].(map[string]any), "status") }, `status "", want`},
		{"wrong type", func(m map[string]any) { m["results"].([]any)[0].(map[string]any)["duration_ns"] = "slow" }, `field "results.duration_ns"`},
		{"null result", func(m map[string]any) { m["results"].([]any)[0] = nil }, "results[0] is null"},
		{"unknown phase", func(m map[string]any) {
			phases := m["results"].([]any)[0].(map[string]any)["timeline"].(map[string]any)["phases"].([]any)
			phases[1].(map[string]any)["phase"] = "reinit committed"
		}, `timeline.phases[1].phase "reinit committed", want "operation_started", `},
		{"unknown strategy", func(m map[string]any) { m["results"].([]any)[0].(map[string]any)["strategy"] = "unknown" }, `strategy "unknown", want "two-phase", "atomic" or "not observed" (or empty)`},
		{"unknown window state", func(m map[string]any) {
			m["results"].([]any)[0].(map[string]any)["facts"].(map[string]any)["window"] = "maybe"
		}, `facts.window "maybe", want "observed", "none" or "not_observed" (or empty)`},
		{"unknown invariant", func(m map[string]any) {
			m["results"].([]any)[0].(map[string]any)["invariants"].([]any)[0].(map[string]any)["name"] = "foreign keys"
		}, `invariants[0].name "foreign keys", want "foreign_keys"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(good, &m); err != nil {
				t.Fatal(err)
			}
			c.change(m)
			bad, _ := json.Marshal(m)
			if err := validateJSON(s, bad); err == nil {
				t.Error("the schema accepted it")
			}
			_, err := ReadJSON(bytes.NewReader(bad))
			switch {
			case c.msg == "":
			case err == nil:
				t.Error("ReadJSON accepted it")
			case !strings.Contains(err.Error(), c.msg):
				t.Errorf("ReadJSON: %v\nwant it to say: %s", err, c.msg)
			}
		})
	}
	if _, err := ReadJSON(strings.NewReader("[1, 2]")); err == nil || strings.Contains(err.Error(), "struct") {
		t.Errorf("a JSON array: %v (want a plain \"not a JSON object\")", err)
	}
	for _, in := range []string{"", "[]", `{"version": 1,`, `{"version": "one"}`, `{"version": 1, "results": []} {}`} {
		if _, err := ReadJSON(strings.NewReader(in)); err == nil {
			t.Errorf("ReadJSON(%q) accepted it", in)
		}
	}
}
