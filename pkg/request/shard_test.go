package request

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseShard(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Shard
		err  bool
	}{
		{"", Shard{}, false},
		{"1/1", Shard{1, 1}, false},
		{"2/3", Shard{2, 3}, false},
		{" 3 / 3 ", Shard{3, 3}, false},
		{"0/3", Shard{}, true},
		{"4/3", Shard{}, true},
		{"1/0", Shard{}, true},
		{"-1/3", Shard{}, true},
		{"1", Shard{}, true},
		{"a/b", Shard{}, true},
		{"1/3/5", Shard{}, true},
	} {
		got, err := ParseShard(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.err)
		}
		if err != nil && !strings.Contains(err.Error(), "i/n") {
			t.Errorf("ParseShard(%q) error %q does not say how to write it", c.in, err)
		}
	}
}

func TestShardsPartitionTheInput(t *testing.T) {
	ids := make([]string, 20000)
	for i := range ids {
		ids[i] = fmt.Sprintf("req-%d", i)
	}
	ids = append(ids, "", "line-1", "ü-ünïcode", "a/b")
	for _, n := range []int{1, 2, 3, 7, 16} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			counts := make([]int, n)
			for _, id := range ids {
				in := 0
				for i := 1; i <= n; i++ {
					if (Shard{I: i, N: n}).Has(id) {
						in++
						counts[i-1]++
					}
				}
				if in != 1 {
					t.Fatalf("id %q is in %d of %d shards, want exactly 1", id, in, n)
				}
			}
			for i, c := range counts {
				// SHA-256 spreads ids evenly: each shard within 10% of its share (≥ 7 standard deviations).
				if share := len(ids) / n; c < share*9/10 || c > share*11/10 {
					t.Errorf("shard %d/%d has %d of %d ids, want about %d", i+1, n, c, len(ids), share)
				}
			}
		})
	}
	if !(Shard{}).Has("x") || (Shard{}).String() != "" || (Shard{2, 3}).String() != "2/3" {
		t.Error("the zero Shard is the whole job")
	}
}

func TestShardIsStable(t *testing.T) {
	// Golden assignments: they must never change between versions, or a resumed shard would take
	// other prompts than its first run did.
	for _, c := range []struct {
		id       string
		of3, of5 int
	}{{"a1", 1, 1}, {"a2", 2, 1}, {"line-7", 3, 5}, {"req-42", 1, 1}, {"x", 1, 2}} {
		if got := shardOf(c.id, 3); got != c.of3 {
			t.Errorf("%q is in shard %d/3, was %d/3", c.id, got, c.of3)
		}
		if got := shardOf(c.id, 5); got != c.of5 {
			t.Errorf("%q is in shard %d/5, was %d/5", c.id, got, c.of5)
		}
	}
}

func shardOf(id string, n int) int {
	for i := 1; i <= n; i++ {
		if (Shard{I: i, N: n}).Has(id) {
			return i
		}
	}
	return 0
}
