package harness

import (
	"bytes"
	"encoding/json"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// generateSchema builds the JSON Schema (draft-07, what editors' YAML
// language servers support) of the scenario language from the Go types the loader decodes into and the registries of
// check and probe kinds; the doc comments of harness's source become its
// descriptions, so the language reference has one source. It runs in tests
// only (TestSchemaMatchesTypes -update-schema writes scenario.schema.json).
func generateSchema() ([]byte, error) {
	docs, err := fieldDocs()
	if err != nil {
		return nil, err
	}
	return schemaOf(reflect.TypeOf(Scenario{}), "scenario", "rehearse scenario", docs)
}

// generateTargetSchema builds the JSON Schema of a target file (TargetFile).
func generateTargetSchema() ([]byte, error) {
	docs, err := fieldDocs()
	if err != nil {
		return nil, err
	}
	return schemaOf(reflect.TypeOf(TargetFile{}), "target", "rehearse target file", docs)
}

func schemaOf(t reflect.Type, name, title string, docs map[string]string) ([]byte, error) {
	g := &schemaGen{docs: docs, defs: map[string]any{}}
	root := g.structSchema(t)
	root["$schema"] = "http://json-schema.org/draft-07/schema#"
	root["$id"] = "https://rehearse.dev/schemas/" + name + ".schema.json"
	root["title"] = title
	root["definitions"] = g.defs
	b, err := json.MarshalIndent(root, "", "  ")
	return append(b, '\n'), err
}

// described gives p a description. draft-07 ignores what stands beside a
// $ref, so a reference goes into an allOf of its own.
func described(p map[string]any, doc string) map[string]any {
	if ref, ok := p["$ref"]; ok {
		p = map[string]any{"allOf": []any{map[string]any{"$ref": ref}}}
	}
	p["description"] = doc
	return p
}

type schemaGen struct {
	docs map[string]string // "Type.Field" and "Type" → comment
	defs map[string]any
}

func (g *schemaGen) ref(t reflect.Type) map[string]any {
	name := t.Name()
	if _, ok := g.defs[name]; !ok {
		g.defs[name] = nil // placeholder against recursion
		g.defs[name] = g.structSchema(t)
	}
	return map[string]any{"$ref": "#/definitions/" + name}
}

func (g *schemaGen) structSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	var shorthand map[string]any
	if i, _ := oneOfField(t); i >= 0 {
		g.kindProperties(t.Field(i).Tag.Get("oneof"), props)
	}
	for _, f := range yamlFields(t) {
		name := fieldName(f)
		p := g.typeSchema(f.Type)
		if doc := g.docs[declaringType(t, f).Name()+"."+f.Name]; doc != "" {
			p = described(p, doc)
		}
		if enum := f.Tag.Get("enum"); enum != "" {
			p["enum"] = strings.Split(enum, ",")
		}
		props[name] = p
		if f.Tag.Get("required") == "true" {
			required = append(required, name)
		}
		if f.Tag.Get("shorthand") == "true" {
			shorthand = p
		}
	}
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if t == reflect.TypeOf(Expectation{}) {
		s["minProperties"], s["maxProperties"] = 1, 1
	}
	if len(required) > 0 {
		s["required"] = required
	}
	if doc := g.docs[t.Name()]; doc != "" {
		s["description"] = doc
	}
	if shorthand != nil {
		return map[string]any{"description": s["description"], "oneOf": []any{shorthand, s}}
	}
	return s
}

// declaringType is the struct that declares f, a field of t or of a
// struct t embeds: its doc comment is there.
func declaringType(t reflect.Type, f reflect.StructField) reflect.Type {
	for _, i := range f.Index[:len(f.Index)-1] {
		t = t.Field(i).Type
	}
	return t
}

func (g *schemaGen) typeSchema(t reflect.Type) map[string]any {
	if t == durationType {
		return map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`, "examples": []string{"10ms", "30s"}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.typeSchema(t.Elem())
	case reflect.Struct:
		return g.ref(t)
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.typeSchema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.typeSchema(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64:
		return map[string]any{"type": "integer"}
	}
	return map[string]any{}
}

// kindProperties adds one property per registered kind of a one-of field.
func (g *schemaGen) kindProperties(registry string, props map[string]any) {
	kinds := registries[registry]
	for _, name := range kinds.names() {
		v, _ := kinds.newValue(name)
		props[name] = described(g.typeSchema(v.Type()), kinds.doc(name))
	}
}

// fieldDocs reads the doc comments of the package's types and fields.
func fieldDocs() (map[string]string, error) {
	docs := map[string]string{}
	files, err := filepath.Glob("*.go")
	if err != nil {
		return nil, err
	}
	clean := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				typeDocs(docs, gd, spec.(*ast.TypeSpec), clean)
			}
		}
	}
	return docs, nil
}

func typeDocs(docs map[string]string, gd *ast.GenDecl, ts *ast.TypeSpec, clean func(string) string) {
	if gd.Doc != nil {
		docs[ts.Name.Name] = clean(gd.Doc.Text())
	}
	st, ok := ts.Type.(*ast.StructType)
	if !ok {
		return
	}
	for _, fld := range st.Fields.List {
		if fld.Doc == nil {
			continue
		}
		for _, n := range fld.Names {
			docs[ts.Name.Name+"."+n.Name] = clean(fld.Doc.Text())
		}
	}
}

var updateSchema = flag.Bool("update-schema", false, "rewrite harness/scenario.schema.json and harness/target.schema.json")

// The shipped JSON Schemas must be what the Go types generate: change the
// types, then run go test ./harness -run TestSchema -update-schema.
func TestSchemaMatchesTypes(t *testing.T) {
	for file, gen := range map[string]func() ([]byte, error){"scenario.schema.json": generateSchema, "target.schema.json": generateTargetSchema} {
		got, err := gen()
		if err != nil {
			t.Fatal(err)
		}
		if *updateSchema {
			if err := os.WriteFile(file, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		shipped, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, shipped) {
			t.Fatalf("harness/%s drifted from the Go types; run: go test ./harness -run TestSchema -update-schema", file)
		}
	}
	got, _ := generateSchema()
	for _, want := range []string{`"restore_from_file"`, `"additionalProperties": false`, `"during_window"`, `Engine strategy of the embedded system`,
		`"$schema": "http://json-schema.org/draft-07/schema#"`, `"$ref": "#/definitions/TargetFile"`} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("schema lacks %s", want)
		}
	}
	if bytes.Contains(got, []byte("$defs")) {
		t.Error("the scenario schema uses $defs, which draft-07 does not know")
	}
}

// The embedded schemas are the shipped files.
func TestJSONSchemaIsShipped(t *testing.T) {
	for file, embedded := range map[string][]byte{"scenario.schema.json": JSONSchema(), "target.schema.json": TargetJSONSchema()} {
		shipped, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(embedded, shipped) {
			t.Fatalf("the embedded schema differs from %s", file)
		}
	}
}
