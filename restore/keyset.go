package restore

import "math/bits"

// keySet remembers primary keys (or referenced keys) seen in a backup. Integer
// keys, the common case, go into a sparse bitset: one bit per id, in 8 KiB
// chunks of 65536 ids, so a million dense ids cost 128 KiB and memory stays flat
// as the backup grows. Other keys (text, uuid) go into a map.
type keySet struct {
	chunks map[int64]*[1024]uint64
	strs   map[string]struct{}
	n      int
}

func newKeySet() *keySet { return &keySet{chunks: map[int64]*[1024]uint64{}} }

func split(id int64) (chunk int64, word int, bit uint64) {
	chunk = id >> 16
	off := id & 0xffff
	return chunk, int(off >> 6), 1 << uint(off&63)
}

// addInt adds id and reports whether it was new.
func (s *keySet) addInt(id int64) bool {
	c, w, b := split(id)
	ch := s.chunks[c]
	if ch == nil {
		ch = new([1024]uint64)
		s.chunks[c] = ch
	}
	if ch[w]&b != 0 {
		return false
	}
	ch[w] |= b
	s.n++
	return true
}

func (s *keySet) hasInt(id int64) bool {
	c, w, b := split(id)
	ch := s.chunks[c]
	return ch != nil && ch[w]&b != 0
}

func (s *keySet) addStr(k string) bool {
	if s.strs == nil {
		s.strs = map[string]struct{}{}
	}
	if _, ok := s.strs[k]; ok {
		return false
	}
	s.strs[k] = struct{}{}
	s.n++
	return true
}

func (s *keySet) hasStr(k string) bool {
	_, ok := s.strs[k]
	return ok
}

func (s *keySet) add(k key) bool {
	if k.isInt {
		return s.addInt(k.i)
	}
	return s.addStr(k.s)
}

func (s *keySet) has(k key) bool {
	if k.isInt {
		return s.hasInt(k.i)
	}
	return s.hasStr(k.s)
}

func (s *keySet) len() int { return s.n }

// each calls fn for every key, stopping when fn returns false.
func (s *keySet) each(fn func(key) bool) {
	for c, ch := range s.chunks {
		for w, word := range ch {
			for word != 0 {
				low := word & -word
				bit := 0
				for low>>uint(bit) != 1 {
					bit++
				}
				if !fn(key{isInt: true, i: c<<16 | int64(w)<<6 | int64(bit)}) {
					return
				}
				word &^= low
			}
		}
	}
	for k := range s.strs {
		if !fn(key{s: k}) {
			return
		}
	}
}

// key is a primary-key value in comparable form.
type key struct {
	isInt bool
	i     int64
	s     string
}

func (k key) String() string {
	if k.isInt {
		return itoa(k.i)
	}
	return k.s
}

// value returns the key as a value pgx can send.
func (k key) value() any {
	if k.isInt {
		return k.i
	}
	return k.s
}

// intRange returns the smallest and largest key of a set of integer keys
// (ok is false for an empty set or one holding other keys).
func (s *keySet) intRange() (lo, hi int64, ok bool) {
	if len(s.strs) > 0 || len(s.chunks) == 0 {
		return 0, 0, false
	}
	first := true
	for c, ch := range s.chunks {
		for w, word := range ch {
			if word == 0 {
				continue
			}
			base := c<<16 | int64(w)<<6
			l, h := base+int64(bits.TrailingZeros64(word)), base+63-int64(bits.LeadingZeros64(word))
			if first || l < lo {
				lo = l
			}
			if first || h > hi {
				hi = h
			}
			first = false
		}
	}
	return lo, hi, !first
}
