package restore

import (
	"fmt"
	"io"
)

// Limits bound what the backup scanner accepts, so that no input, however
// hostile, makes a restore hold more than about one object in memory or
// decompress without end. The zero value means the defaults.
type Limits struct {
	// MaxObjectBytes is the largest single object, white space inside it
	// included; 0 means DefaultMaxObjectBytes. Django's loaddata holds a
	// whole object in memory too: one this large is damaged or hostile.
	MaxObjectBytes int
	// MaxExpansion is how many bytes a gzipped backup may decompress to per
	// compressed byte, once past the first ExpansionGrace bytes; 0 means
	// DefaultMaxExpansion, negative means no limit. Real dumpdata
	// compresses 5 to 20 fold, a backup of identical objects some 350 fold;
	// deflate cannot exceed about 1030 fold, which a gzip bomb of white
	// space reaches.
	MaxExpansion int
	// MaxDecompressedBytes caps the decompressed size of a gzipped backup in
	// total; 0 means no cap.
	MaxDecompressedBytes int64
}

const (
	// DefaultMaxObjectBytes is the default Limits.MaxObjectBytes.
	DefaultMaxObjectBytes = 64 << 20
	// DefaultMaxExpansion is the default Limits.MaxExpansion.
	DefaultMaxExpansion = 500
	// ExpansionGrace is how much a gzipped backup may decompress to before
	// MaxExpansion applies: a small file may compress better than a large one.
	ExpansionGrace = 64 << 20
)

// maxFields bounds the members of one object's "fields". PostgreSQL tables
// have at most 1600 columns; without a bound, an object of millions of tiny
// fields would cost far more memory than its bytes.
const maxFields = 10_000

// maxManyToMany bounds the entries of one many-to-many list of one object.
const maxManyToMany = 1 << 20

func (l Limits) maxObject() int {
	if l.MaxObjectBytes <= 0 {
		return DefaultMaxObjectBytes
	}
	return l.MaxObjectBytes
}

func (l Limits) maxExpansion() int64 {
	switch {
	case l.MaxExpansion < 0:
		return 0
	case l.MaxExpansion == 0:
		return DefaultMaxExpansion
	}
	return int64(l.MaxExpansion)
}

// WithLimits returns an opener for the same backup that the scanner reads
// with these limits instead of the defaults.
func WithLimits(open Opener, l Limits) Opener {
	return func() (io.ReadCloser, error) {
		rc, err := open()
		if err != nil {
			return nil, err
		}
		return &limitedBackup{ReadCloser: rc, limits: l}, nil
	}
}

// limitedBackup carries Limits from WithLimits to newDumpReader.
type limitedBackup struct {
	io.ReadCloser
	limits Limits
}

func limitsOf(rc io.ReadCloser) Limits {
	if lb, ok := rc.(*limitedBackup); ok {
		return lb.limits
	}
	return Limits{}
}

// errLimit is input beyond one of the Limits. index is the object being
// read, or -1 when the limit is not about one object.
type errLimit struct {
	index   int
	problem string
}

func (e *errLimit) Error() string { return e.problem }

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// expansionLimit stops a gzip stream that decompresses to more than the
// limits allow, before the scanner spends minutes on it.
type expansionLimit struct {
	r          io.Reader // decompressed
	compressed *countingReader
	limits     Limits
	n          int64 // decompressed bytes so far
}

func (e *expansionLimit) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.n += int64(n)
	if max := e.limits.MaxDecompressedBytes; max > 0 && e.n > max {
		return n, &errLimit{index: -1, problem: fmt.Sprintf("the gzipped backup decompresses to more than %s, the limit; decompress it yourself (gunzip) if it is genuine, and restore the plain file", size(max))}
	}
	if ratio := e.limits.maxExpansion(); ratio > 0 && e.n > ExpansionGrace && e.n > ratio*e.compressed.n {
		return n, &errLimit{index: -1, problem: fmt.Sprintf("the gzipped backup expands more than %d fold (%s from %s so far), which dumpdata never does: it looks like a decompression bomb; if it is genuine, gunzip it and restore the plain file", ratio, size(e.n), size(e.compressed.n))}
	}
	return n, err
}

// size renders a byte count for messages.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
