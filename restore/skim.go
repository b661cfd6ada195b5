package restore

import (
	"bufio"
	"bytes"
	"context"
	"io"

	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
)

// skimKeys is the fast form of readKeys: it reads only each object's model
// and primary key, and runs over "fields" with a tight loop that only
// follows strings and nesting instead of checking the syntax, so it reads
// the backup about 1.5 times faster than the validating scanner. It checks
// nothing the load's pass does not check again: whenever the backup is not
// the plain shape it expects (gzip, an escape in a model label or a key,
// a pk that is not a plain number or string, a duplicate key, an unknown
// model, anything unusual), it gives up (ok false) and the caller reads
// the keys with readKeys, which reports the problem exactly. On a valid
// backup it finds the same keys as readKeys; on a damaged one what it
// found does not matter, as the load's pass then fails and the
// transaction rolls back.
func skimKeys(ctx context.Context, cat *pgcatalog.Catalog, opts *Options) (sm *schemaMap, ok bool, err error) {
	rc, err := opts.Open()
	if err != nil {
		return nil, false, err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 1<<20)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		return nil, false, nil
	}
	sm = newSchemaMap(cat, opts.Protected)
	var c cell
	var last *modelPlan
	s := skimmer{emit: func(o *object) bool {
		p := last
		if p == nil || p.label != o.Model {
			var err error
			if p, err = sm.model(o); err != nil {
				return false
			}
			last = p
		}
		if err := p.pkConv.convert(o.PK, &c); err != nil || c.null {
			return false
		}
		return p.keys.add(p.pkConv.key(&c))
	}}
	// A goroutine reads ahead while the chunk before is skimmed: on two
	// cores the read costs almost nothing then.
	type chunk struct {
		b   []byte
		err error
	}
	full, free := make(chan chunk, 2), make(chan []byte, 3)
	for range 3 {
		free <- make([]byte, 1<<20)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			var buf []byte
			select {
			case buf = <-free:
			case <-stop:
				return
			}
			k, rerr := io.ReadFull(br, buf)
			select {
			case full <- chunk{buf[:k], rerr}:
			case <-stop:
				return
			}
			if rerr != nil {
				return
			}
		}
	}()
	for {
		var c chunk
		select {
		case c = <-full:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		if len(c.b) > 0 && !s.feed(c.b) {
			return nil, false, nil
		}
		if c.err == io.EOF || c.err == io.ErrUnexpectedEOF {
			break
		}
		if c.err != nil {
			return nil, false, nil // readKeys reports it
		}
		free <- c.b[:cap(c.b)]
	}
	if s.depth != 0 || s.inStr || !s.closed {
		return nil, false, nil
	}
	return sm, true, nil
}

// skimmer is skimKeys' state between chunks.
type skimmer struct {
	emit   func(o *object) bool // false: give up
	depth  int                  // 1 inside the list, 2 inside an object, more inside "fields"
	inStr  bool                 // inside a string
	esc    bool                 // the previous byte was a backslash inside a string
	closed bool                 // the list ended

	// depth 2 (an object's members)
	keyPos  bool   // a member name comes next (else its value)
	capKey  bool   // the string being read is a member name
	capVal  bool   // the string or number being read is the model or the pk
	member  []byte // the current member's name
	model   []byte
	pk      []byte
	hasPK   bool
	hasMod  bool
	label   string // model as a string, reused while it repeats
	objects int
	obj     object
}

const skimMax = 256 // longest model label, member name or pk captured

// feed scans one chunk; false means give up.
func (s *skimmer) feed(b []byte) bool {
	i := 0
	ok := true
	for i < len(b) && ok {
		switch {
		case s.depth > 2:
			i = s.skipNested(b, i)
		case s.inStr:
			i, ok = s.inString(b, i)
		default:
			i, ok = s.structural(b, i)
		}
	}
	return ok
}

// skipNested runs over the bytes of "fields" (or another nested value)
// from i: only where it ends matters, so one tight loop does it. It
// returns where it stopped: past the value's end, or the chunk's.
func (s *skimmer) skipNested(b []byte, i int) int {
	depth, inStr, esc := s.depth, s.inStr, s.esc
	for i < len(b) {
		c := b[i]
		i++
		if inStr {
			if esc {
				esc = false
			} else if c == '\\' {
				esc = true
			} else if c == '"' {
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 2 {
				s.depth, s.inStr, s.esc = depth, inStr, esc
				return i
			}
		}
	}
	s.depth, s.inStr, s.esc = depth, inStr, esc
	return i
}

// inString reads a string from i, capturing it if it is a member name, the
// model or the pk; an escape in one of those gives up.
func (s *skimmer) inString(b []byte, i int) (int, bool) {
	if s.esc {
		s.esc = false
		return i + 1, true
	}
	rest := b[i:]
	q := bytes.IndexByte(rest, '"')
	seg := rest
	if q >= 0 {
		seg = rest[:q]
	}
	if bs := bytes.IndexByte(seg, '\\'); bs >= 0 {
		if s.capKey || s.capVal {
			return i, false
		}
		s.esc = true
		return i + bs + 1, true
	}
	if (s.capKey || s.capVal) && !s.capture(seg) {
		return i, false
	}
	if q < 0 {
		return len(b), true
	}
	i += q + 1
	s.inStr = false
	if s.capVal {
		if string(s.member) == "pk" && !s.capture([]byte{'"'}) {
			return i, false
		}
		s.capVal = false // the value ends with its string
	}
	s.capKey = false
	return i, true
}

// structural reads the byte at i outside strings and nested values: white
// space, the start of a string, brackets, and an object's ':' and ','.
func (s *skimmer) structural(b []byte, i int) (int, bool) {
	c := b[i]
	i++
	switch c {
	case ' ', '\n', '\r', '\t':
		return i, true
	case '"':
		return i, s.openString()
	case '{', '[':
		if s.closed || (s.depth == 0 && c != '[') || (s.depth == 1 && c != '{') {
			return i, false
		}
		if s.depth == 2 && s.capVal {
			return i, false // a pk that is an object or a list
		}
		s.depth++
		if s.depth == 2 {
			s.keyPos, s.capVal, s.hasPK, s.hasMod = true, false, false, false
			s.member = s.member[:0]
		}
		return i, true
	case '}', ']':
		if s.depth == 2 && (c != '}' || !s.endMember() || !s.end()) {
			return i, false
		}
		s.depth--
		if s.depth == 0 {
			s.closed = true
		}
		return i, s.depth >= 0
	}
	if s.depth != 2 {
		return i, s.depth >= 2 || c == ','
	}
	return s.inObject(c, b, i)
}

// openString starts a string: a member name, the model's value, or a pk
// that is a string.
func (s *skimmer) openString() bool {
	s.inStr = true
	switch {
	case s.depth < 2:
		return false
	case s.depth > 2:
		return true
	case s.keyPos:
		s.capKey = true
		s.member = s.member[:0]
	case s.capVal:
		if len(s.pk) > 0 || !s.capture([]byte{'"'}) {
			return false
		}
	case string(s.member) == "model":
		s.capVal = true
		s.model, s.hasMod = s.model[:0], true
	}
	return true
}

// inObject reads an object's ':' or ',' or a bare value (a number pk) at
// i-1 (c).
func (s *skimmer) inObject(c byte, b []byte, i int) (int, bool) {
	switch c {
	case ':':
		if !s.keyPos {
			return i, false
		}
		s.keyPos = false
		if string(s.member) == "pk" {
			s.capVal, s.hasPK = true, true
			s.pk = s.pk[:0]
		}
	case ',':
		if !s.endMember() {
			return i, false
		}
		s.keyPos = true
	default:
		if s.keyPos {
			return i, false
		}
		if s.capVal {
			j := i
			for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ' ' && b[j] != '\n' && b[j] != '\r' && b[j] != '\t' && b[j] != '"' && b[j] != '{' && b[j] != '[' && b[j] != ']' {
				j++
			}
			if !s.capture(b[i-1 : j]) {
				return i, false
			}
			i = j
		}
	}
	return i, true
}

// capture appends to the member name, model label or pk being read.
func (s *skimmer) capture(p []byte) bool {
	switch {
	case s.capKey:
		s.member = append(s.member, p...)
		return len(s.member) <= skimMax
	case string(s.member) == "model":
		s.model = append(s.model, p...)
		return len(s.model) <= skimMax
	default:
		s.pk = append(s.pk, p...)
		return len(s.pk) <= skimMax
	}
}

// endMember ends a member's value at depth 2.
func (s *skimmer) endMember() bool {
	s.capVal = false
	return true
}

// end passes on the object just ended.
func (s *skimmer) end() bool {
	if !s.hasMod || !s.hasPK || len(s.model) == 0 || len(s.pk) == 0 {
		return false
	}
	if s.label != string(s.model) {
		s.label = string(s.model)
	}
	s.obj = object{Index: s.objects, Model: s.label, PK: s.pk, fields: s.obj.fields[:0]}
	s.objects++
	return s.emit(&s.obj)
}
