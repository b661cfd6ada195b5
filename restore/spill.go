package restore

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"sync/atomic"
)

// spillAt is how many hashes of one unique index a valueSet keeps in
// memory (about 300 KiB); beyond it they go to a temporary file
// (hashRuns), so that the engine's memory stays flat however many unique
// values a backup holds. A test lowers it to run the spilled path on small
// backups.
var spillAt = 1 << 15

const (
	runLen   = 1 << 14 // hashes sorted in memory per run (128 KiB)
	blockLen = 512     // hashes of the merged file one index entry stands for
	// mergeBuffers bounds the read buffers of all runs while they merge.
	mergeBuffers = 8 << 20
)

// hashRuns holds the hashes of a unique index that outgrew memory: sorted
// runs of runLen hashes in an unlinked temporary file, merged once (merge)
// into one sorted file without repeats, where the hashes seen more than
// once are noted and has looks a hash up through a sparse index.
type hashRuns struct {
	f      *os.File
	buf    []uint64
	runs   []int64 // offset (in hashes) where each run starts
	total  int64
	err    error
	merged *os.File
	n      int64    // hashes in merged
	index  []uint64 // first hash of each block of merged
	dups   []uint64 // hashes seen twice or more
	block  []byte
}

// spills counts the sets that spilled, for the tests of that path.
var spills atomic.Int64

func newHashRuns() *hashRuns {
	spills.Add(1)
	f, err := tempFile()
	return &hashRuns{f: f, err: err, buf: make([]uint64, 0, min(spillAt, runLen))}
}

// tempFile is a file that disappears when closed, or when the process ends.
func tempFile() (*os.File, error) {
	f, err := os.CreateTemp("", "rehearse-unique-*")
	if err != nil {
		return nil, fmt.Errorf("spill unique values to a temporary file: %w", err)
	}
	os.Remove(f.Name())
	return f, nil
}

func (r *hashRuns) add(h uint64) {
	if r.err != nil {
		return
	}
	if r.buf = append(r.buf, h); len(r.buf) == cap(r.buf) {
		r.flush()
	}
}

// flush writes the buffered hashes as one sorted run.
func (r *hashRuns) flush() {
	if r.err != nil || len(r.buf) == 0 {
		return
	}
	slices.Sort(r.buf)
	b := make([]byte, 0, 8*len(r.buf))
	for _, h := range r.buf {
		b = binary.LittleEndian.AppendUint64(b, h)
	}
	if _, err := r.f.WriteAt(b, 8*r.total); err != nil {
		r.err = fmt.Errorf("spill unique values to a temporary file: %w", err)
		return
	}
	r.runs = append(r.runs, r.total)
	r.total += int64(len(r.buf))
	r.buf = r.buf[:0]
}

// maxDups bounds the repeated hashes merge notes: the first repeated value
// is all a refusal needs, and two values with one hash are rare.
const maxDups = 1024

// merge merges the runs into one sorted file without repeats, noting the
// hashes that came more than once (up to maxDups of them).
func (r *hashRuns) merge() error {
	if r.merged != nil || r.err != nil {
		return r.err
	}
	if r.err = r.mergeRuns(); r.err != nil {
		r.dups = nil
	}
	return r.err
}

func (r *hashRuns) mergeRuns() error {
	r.flush()
	if r.err != nil {
		return r.err
	}
	out, err := tempFile()
	if err != nil {
		return err
	}
	r.merged = out
	heads := &runHeap{}
	bufSize := min(32<<10, max(4<<10, mergeBuffers/max(1, len(r.runs))))
	for i, start := range r.runs {
		end := r.total
		if i+1 < len(r.runs) {
			end = r.runs[i+1]
		}
		rd := bufio.NewReaderSize(io.NewSectionReader(r.f, 8*start, 8*(end-start)), bufSize)
		if h, ok, err := nextHash(rd); err != nil {
			return err
		} else if ok {
			heads.items = append(heads.items, runHead{h: h, rd: rd})
		}
	}
	heap.Init(heads)
	w := bufio.NewWriterSize(out, 64<<10)
	var last uint64
	for heads.Len() > 0 {
		top := &heads.items[0]
		h := top.h
		switch {
		case r.n > 0 && h == last:
			if len(r.dups) < maxDups && (len(r.dups) == 0 || r.dups[len(r.dups)-1] != h) {
				r.dups = append(r.dups, h)
			}
		default:
			if r.n%blockLen == 0 {
				r.index = append(r.index, h)
			}
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], h)
			if _, err := w.Write(b[:]); err != nil {
				return err
			}
			r.n++
			last = h
		}
		if next, ok, err := nextHash(top.rd); err != nil {
			return err
		} else if ok {
			top.h = next
			heap.Fix(heads, 0)
		} else {
			heap.Pop(heads)
		}
	}
	r.buf = nil
	r.f.Close()
	return w.Flush()
}

// has says whether h is among the merged hashes.
func (r *hashRuns) has(h uint64) (bool, error) {
	if err := r.merge(); err != nil {
		return false, err
	}
	i := sort.Search(len(r.index), func(i int) bool { return r.index[i] > h }) - 1
	if i < 0 {
		return false, nil
	}
	n := min(blockLen, r.n-int64(i)*blockLen)
	if cap(r.block) < blockLen*8 {
		r.block = make([]byte, blockLen*8)
	}
	b := r.block[:8*n]
	if _, err := r.merged.ReadAt(b, int64(i)*blockLen*8); err != nil {
		return false, fmt.Errorf("read spilled unique values: %w", err)
	}
	_, found := sort.Find(int(n), func(j int) int {
		v := binary.LittleEndian.Uint64(b[8*j:])
		switch {
		case h < v:
			return -1
		case h > v:
			return 1
		}
		return 0
	})
	return found, nil
}

func (r *hashRuns) close() {
	for _, f := range []*os.File{r.f, r.merged} {
		if f != nil {
			f.Close()
		}
	}
}

func nextHash(rd *bufio.Reader) (uint64, bool, error) {
	var b [8]byte
	if _, err := io.ReadFull(rd, b[:]); err == io.EOF {
		return 0, false, nil
	} else if err != nil {
		return 0, false, fmt.Errorf("read spilled unique values: %w", err)
	}
	return binary.LittleEndian.Uint64(b[:]), true, nil
}

// runHead is a run's smallest hash not yet merged.
type runHead struct {
	h  uint64
	rd *bufio.Reader
}

type runHeap struct{ items []runHead }

func (q *runHeap) Len() int           { return len(q.items) }
func (q *runHeap) Less(i, j int) bool { return q.items[i].h < q.items[j].h }
func (q *runHeap) Swap(i, j int)      { q.items[i], q.items[j] = q.items[j], q.items[i] }
func (q *runHeap) Push(x any)         { q.items = append(q.items, x.(runHead)) }
func (q *runHeap) Pop() any {
	x := q.items[len(q.items)-1]
	q.items = q.items[:len(q.items)-1]
	return x
}
