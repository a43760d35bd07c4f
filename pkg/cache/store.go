// Package cache is llmbatch's response cache: answers already bought, keyed by the request hash
// (the canonical request: model pin, messages and every parameter that changes the answer) and the
// lane ("provider/model") that answered, so a re-run of an overlapping input pays nothing for them.
//
// The store is one SQLite database in WAL mode through the pure-Go driver modernc.org/sqlite: WAL
// lets two llmbatch processes on one machine read and write the same cache at once (readers never
// block the writer; writers queue on SQLite's own lock with a busy timeout), the file survives a
// crash without repair, and the pure-Go driver keeps the build free of cgo. Every answer carries a
// CRC, so a damaged entry is never served; a cache that cannot be opened or read is reported once
// by the caller and bypassed.
package cache

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// FileName is the cache database's name inside the cache directory.
const FileName = "responses.db"

// DefaultMaxBytes is the default size cap of the stored entries (1 GiB).
const DefaultMaxBytes = 1 << 30

// Dir returns the cache directory: $XDG_CACHE_HOME/llmbatch, else $HOME/.cache/llmbatch.
func Dir(getenv func(string) string) (string, error) {
	if d := getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "llmbatch"), nil
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "llmbatch"), nil
	}
	return "", errors.New("cache: neither XDG_CACHE_HOME nor HOME is set: set one, or run with --cache off")
}

// Entry is one cached answer.
type Entry struct {
	Provider     string          `json:"provider"`
	Model        string          `json:"model"`
	Content      string          `json:"content,omitempty"`
	ToolCalls    json.RawMessage `json:"tool_calls,omitempty"`
	FinishReason string          `json:"finish_reason,omitempty"`
	Usage        provider.Usage  `json:"usage"`
	CostUSD      float64         `json:"cost_usd"` // what the answer cost when it was bought
	RequestID    string          `json:"request_id,omitempty"`
	Created      time.Time       `json:"-"` // when it was stored
}

// Lane is the entry's "provider/model".
func (e *Entry) Lane() string { return e.Provider + "/" + e.Model }

// Options configure a Store.
type Options struct {
	// MaxBytes caps the stored entries' size (answer bytes plus a fixed per-entry overhead); past
	// it the least recently used entries are evicted. 0 = DefaultMaxBytes.
	MaxBytes int64
	// TTL, when positive, makes entries older than it misses; Prune deletes them.
	TTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Store is an open cache database. Get is safe for concurrent use; Put and Touch queue writes for
// one background writer, which commits them in batches. Close flushes the queue.
type Store struct {
	path string
	db   *sql.DB
	get  *sql.Stmt
	// Lookups share one read transaction for up to readBatch of them: starting a WAL read
	// transaction costs several system calls (locks on the shared-memory index), more than the
	// lookup itself. A snapshot at most readBatch lookups old is as good as a new one here.
	readMu sync.Mutex
	rtx    *sql.Tx
	rget   *sql.Stmt
	reads  int
	// The writer's statements, prepared once: preparing per row costs more than the row.
	size, put, touch, grow *sql.Stmt
	o                      Options

	writes chan write
	done   chan struct{}
	// mu guards closing writes: senders hold it shared, Close exclusively. The writer never takes
	// it, so a sender blocked on a full queue always gets through.
	mu     sync.RWMutex
	closed bool
	errMu  sync.Mutex
	err    error // the first write error; later writes are dropped
}

type write struct {
	hash  []byte
	lane  string
	value []byte // nil = touch (mark used)
	cost  float64
}

// entryOverhead approximates the per-entry bytes beyond the answer (key, index, row header).
const entryOverhead = 96

const schema = `
CREATE TABLE IF NOT EXISTS entries (
	hash    BLOB    NOT NULL, -- sha256 of the canonical request (32 bytes)
	lane    TEXT    NOT NULL, -- provider/model that answered
	value   BLOB    NOT NULL, -- the Entry, encoded (codec.go)
	cost    REAL    NOT NULL, -- what the answer cost when bought (USD)
	crc     INTEGER NOT NULL, -- CRC-32C of value: a damaged entry is never served
	size    INTEGER NOT NULL, -- what the entry counts against the size cap
	created INTEGER NOT NULL, -- unix ms
	used    INTEGER NOT NULL, -- unix ms of the last hit: least recently used goes first
	PRIMARY KEY (hash, lane)
);
CREATE INDEX IF NOT EXISTS entries_used ON entries (used);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (k, v) VALUES ('version', 1), ('bytes', 0);
`

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Open opens (creating if needed) the cache database at path. An error means the cache cannot be
// used: the caller reports it and runs without.
func Open(path string, o Options) (*Store, error) {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(30000)", "journal_mode(WAL)", "synchronous(NORMAL)", "auto_vacuum(INCREMENTAL)",
		"cache_size(-65536)", "mmap_size(1073741824)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate") // a writer takes the lock at BEGIN, so two processes never deadlock upgrading
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("cache: %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	s := &Store{path: path, db: db, o: o, writes: make(chan write, 1024), done: make(chan struct{})}
	if err := s.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("cache: %s: %w", path, err)
	}
	go s.writer()
	return s, nil
}

func (s *Store) init() error {
	ctx := context.Background()
	var v int
	// The schema statement is idempotent; a second process racing on it waits on the lock.
	if _, err := s.db.ExecContext(ctx, schema); err != nil {
		return err
	}
	if err := s.db.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'version'`).Scan(&v); err != nil {
		return err
	}
	if v != 1 {
		return fmt.Errorf("cache format version %d, this llmbatch reads 1", v)
	}
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&s.get, `SELECT lane, value, crc, created FROM entries WHERE hash = ?`},
		{&s.size, `SELECT size FROM entries WHERE hash = ? AND lane = ?`},
		{&s.put, `INSERT OR REPLACE INTO entries (hash, lane, value, cost, crc, size, created, used) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`},
		{&s.touch, `UPDATE entries SET used = ? WHERE hash = ? AND lane = ?`},
		{&s.grow, `UPDATE meta SET v = v + ? WHERE k = 'bytes'`},
	} {
		var err error
		if *p.stmt, err = s.db.PrepareContext(ctx, p.sql); err != nil {
			return err
		}
	}
	return nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Key turns a request hash (hex sha256) into the cache key.
func Key(requestHash string) ([]byte, error) {
	k, err := hex.DecodeString(requestHash)
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("cache: request hash %q is not a hex sha256", requestHash)
	}
	return k, nil
}

// Get returns the answer stored for key from the lane with the lowest rank in allowed (lanes not
// in allowed are ignored; a nil allowed takes any lane), or nil. Expired entries are misses; a
// damaged entry is an error.
func (s *Store) Get(key []byte, allowed map[string]int) (*Entry, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if s.rtx != nil && s.reads >= readBatch {
		s.endRead()
	}
	if s.rtx == nil {
		tx, err := s.db.BeginTx(context.Background(), &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return nil, fmt.Errorf("cache: %s: %w", s.path, err)
		}
		s.rtx, s.rget, s.reads = tx, tx.Stmt(s.get), 0
	}
	s.reads++
	e, err := s.lookup(key, allowed)
	if err != nil {
		s.endRead()
	}
	return e, err
}

// readBatch is how many lookups share a read transaction.
const readBatch = 1000

// endRead ends the shared read transaction (with readMu held).
func (s *Store) endRead() {
	if s.rtx != nil {
		s.rtx.Rollback()
		s.rtx, s.rget = nil, nil
	}
}

func (s *Store) lookup(key []byte, allowed map[string]int) (*Entry, error) {
	rows, err := s.rget.Query(key)
	if err != nil {
		return nil, fmt.Errorf("cache: %s: %w", s.path, err)
	}
	defer rows.Close()
	var best *Entry
	bestRank := 0
	for rows.Next() {
		var lane string
		var value []byte
		var crc, created int64
		if err := rows.Scan(&lane, &value, &crc, &created); err != nil {
			return nil, fmt.Errorf("cache: %s: %w", s.path, err)
		}
		rank, ok := allowed[lane]
		if allowed != nil && !ok || best != nil && rank >= bestRank {
			continue
		}
		at := time.UnixMilli(created)
		if s.o.TTL > 0 && s.o.Now().Sub(at) > s.o.TTL {
			continue
		}
		if uint32(crc) != crc32.Checksum(value, castagnoli) {
			return nil, fmt.Errorf("cache: %s: a damaged entry (checksum mismatch)", s.path)
		}
		var e Entry
		if err := decode(value, &e); err != nil || e.Lane() != lane {
			return nil, fmt.Errorf("cache: %s: a damaged entry (undecodable)", s.path)
		}
		e.Created = at
		best, bestRank = &e, rank
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cache: %s: %w", s.path, err)
	}
	return best, nil
}

// Put queues e as the answer for key; the background writer stores it (replacing the lane's
// earlier answer). It returns the first write error seen so far, if any.
func (s *Store) Put(key []byte, e Entry) error {
	return s.enqueue(write{hash: key, lane: e.Lane(), value: encode(&e), cost: e.CostUSD})
}

// Touch queues marking key's answer from lane as just used (least recently used goes first).
func (s *Store) Touch(key []byte, lane string) error {
	return s.enqueue(write{hash: key, lane: lane})
}

func (s *Store) enqueue(w write) error {
	if err := s.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errors.New("cache: closed")
	}
	s.writes <- w
	return nil
}

// Err returns the first write error, if any.
func (s *Store) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// writer commits queued writes in batches: one transaction per batch keeps fsyncs few.
func (s *Store) writer() {
	defer close(s.done)
	batch := make([]write, 0, 512)
	for w := range s.writes {
		batch = append(batch[:0], w)
	drain:
		for len(batch) < cap(batch) {
			select {
			case w, ok := <-s.writes:
				if !ok {
					break drain
				}
				batch = append(batch, w)
			default:
				break drain
			}
		}
		if s.Err() != nil {
			continue // drain without writing after a failure
		}
		if err := s.commit(batch); err != nil {
			s.errMu.Lock()
			s.err = fmt.Errorf("cache: %s: %w", s.path, err)
			s.errMu.Unlock()
		}
	}
}

func (s *Store) commit(batch []write) error {
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := s.o.Now().UnixMilli()
	sizeOf, put, touch := tx.StmtContext(ctx, s.size), tx.StmtContext(ctx, s.put), tx.StmtContext(ctx, s.touch)
	var delta int64
	for _, w := range batch {
		if w.value == nil {
			if _, err := touch.ExecContext(ctx, now, w.hash, w.lane); err != nil {
				return err
			}
			continue
		}
		var old int64
		err := sizeOf.QueryRowContext(ctx, w.hash, w.lane).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		size := int64(len(w.value) + len(w.lane) + entryOverhead)
		if _, err := put.ExecContext(ctx, w.hash, w.lane, w.value, w.cost, int64(crc32.Checksum(w.value, castagnoli)), size, now, now); err != nil {
			return err
		}
		delta += size - old
	}
	if delta != 0 {
		if _, err := tx.StmtContext(ctx, s.grow).ExecContext(ctx, delta); err != nil {
			return err
		}
	}
	if _, err := evict(ctx, tx, s.o.MaxBytes); err != nil {
		return err
	}
	return tx.Commit()
}

// evict deletes the least recently used entries while the stored bytes exceed max, down to 90% of
// it (so that a full cache does not evict on every write), and returns how many it deleted.
func evict(ctx context.Context, tx *sql.Tx, max int64) (int, error) {
	var total int64
	if err := tx.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'bytes'`).Scan(&total); err != nil {
		return 0, err
	}
	if total <= max {
		return 0, nil
	}
	target := max / 10 * 9
	n := 0
	for total > target {
		rows, err := tx.QueryContext(ctx, `SELECT rowid, size FROM entries ORDER BY used, rowid LIMIT 1000`)
		if err != nil {
			return n, err
		}
		var ids []int64
		var freed int64
		for rows.Next() && total-freed > target {
			var id, size int64
			if err := rows.Scan(&id, &size); err != nil {
				rows.Close()
				return n, err
			}
			ids = append(ids, id)
			freed += size
		}
		rows.Close()
		if len(ids) == 0 {
			break
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `DELETE FROM entries WHERE rowid = ?`, id); err != nil {
				return n, err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE meta SET v = v - ? WHERE k = 'bytes'`, freed); err != nil {
			return n, err
		}
		total -= freed
		n += len(ids)
	}
	return n, nil
}

// Close flushes the queued writes, closes the database and returns the first write error.
func (s *Store) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.writes)
	}
	s.mu.Unlock()
	<-s.done
	s.readMu.Lock()
	s.endRead()
	s.readMu.Unlock()
	cerr := s.db.Close()
	if err := s.Err(); err != nil {
		return err
	}
	return cerr
}

// Stats describe a cache.
type Stats struct {
	Path     string    `json:"path"`
	Entries  int64     `json:"entries"`
	Bytes    int64     `json:"bytes"`      // what the entries count against the cap
	MaxBytes int64     `json:"max_bytes"`  // the cap in force for this Store
	File     int64     `json:"file_bytes"` // the database file and its WAL on disk
	Oldest   time.Time `json:"oldest,omitzero"`
	Newest   time.Time `json:"newest,omitzero"`
	CostUSD  float64   `json:"cost_usd"` // what the stored answers cost when bought
}

// Stats reads the cache's figures.
func (s *Store) Stats() (Stats, error) {
	st := Stats{Path: s.path, MaxBytes: s.o.MaxBytes}
	var oldest, newest sql.NullInt64
	err := s.db.QueryRow(`SELECT COUNT(*), MIN(created), MAX(created) FROM entries`).Scan(&st.Entries, &oldest, &newest)
	if err != nil {
		return st, fmt.Errorf("cache: %s: %w", s.path, err)
	}
	if err := s.db.QueryRow(`SELECT v FROM meta WHERE k = 'bytes'`).Scan(&st.Bytes); err != nil {
		return st, fmt.Errorf("cache: %s: %w", s.path, err)
	}
	if oldest.Valid {
		st.Oldest, st.Newest = time.UnixMilli(oldest.Int64).UTC(), time.UnixMilli(newest.Int64).UTC()
	}
	var cost sql.NullFloat64
	if err := s.db.QueryRow(`SELECT SUM(cost) FROM entries`).Scan(&cost); err != nil {
		return st, fmt.Errorf("cache: %s: %w", s.path, err)
	}
	st.CostUSD = cost.Float64
	for _, p := range []string{s.path, s.path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			st.File += fi.Size()
		}
	}
	return st, nil
}

// Prune deletes the expired entries (with a TTL) and the least recently used ones past the size
// cap, and returns the file's freed pages to the file system. It returns how many entries it deleted.
func (s *Store) Prune() (int, error) {
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("cache: %s: %w", s.path, err)
	}
	defer tx.Rollback()
	n := 0
	if s.o.TTL > 0 {
		cutoff := s.o.Now().Add(-s.o.TTL).UnixMilli()
		var freed sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT SUM(size) FROM entries WHERE created < ?`, cutoff).Scan(&freed); err != nil {
			return 0, fmt.Errorf("cache: %s: %w", s.path, err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM entries WHERE created < ?`, cutoff)
		if err != nil {
			return 0, fmt.Errorf("cache: %s: %w", s.path, err)
		}
		d, _ := res.RowsAffected()
		n += int(d)
		if _, err := tx.ExecContext(ctx, `UPDATE meta SET v = v - ? WHERE k = 'bytes'`, freed.Int64); err != nil {
			return n, fmt.Errorf("cache: %s: %w", s.path, err)
		}
	}
	e, err := evict(ctx, tx, s.o.MaxBytes)
	if err != nil {
		return n, fmt.Errorf("cache: %s: %w", s.path, err)
	}
	n += e
	if err := tx.Commit(); err != nil {
		return n, fmt.Errorf("cache: %s: %w", s.path, err)
	}
	if _, err := s.db.ExecContext(ctx, `PRAGMA incremental_vacuum`); err != nil {
		return n, fmt.Errorf("cache: %s: %w", s.path, err)
	}
	return n, nil
}

// Clear deletes every entry.
func (s *Store) Clear() (int, error) {
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("cache: %s: %w", s.path, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM entries`)
	if err != nil {
		return 0, fmt.Errorf("cache: %s: %w", s.path, err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `UPDATE meta SET v = 0 WHERE k = 'bytes'`); err != nil {
		return 0, fmt.Errorf("cache: %s: %w", s.path, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("cache: %s: %w", s.path, err)
	}
	if _, err := s.db.ExecContext(ctx, `PRAGMA incremental_vacuum`); err != nil {
		return int(n), fmt.Errorf("cache: %s: %w", s.path, err)
	}
	return int(n), nil
}

// Remove deletes the cache files at path (the database, its WAL and shared-memory files): the way
// out of a cache too damaged to open.
func Remove(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cache: %w", err)
		}
	}
	return nil
}
