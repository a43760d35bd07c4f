package results

import "hash/maphash"

// idIndex maps custom_ids to small values without storing the ids, so a million long ids cost a
// few tens of MB instead of the ids' size. Each id is keyed by a 64-bit hash and checked by an
// independent 32-bit fingerprint. Two ids whose keys collide (about 3e-8 for 1e6 ids) are told
// apart by their fingerprints and the later one is kept in a small overflow map under its full
// string, so such collisions cost nothing in correctness; only ids equal in all 96 bits (about
// 1e-17 for 1e6 ids) would be confused. The seeds are random per index, so crafted ids cannot
// aim at collisions.
type idIndex[V any] struct {
	keySeed, fpSeed maphash.Seed
	primary         map[uint64]idSlot[V]
	overflow        map[string]V
}

type idSlot[V any] struct {
	fp uint32
	v  V
}

func newIDIndex[V any]() *idIndex[V] {
	return &idIndex[V]{
		keySeed: maphash.MakeSeed(),
		fpSeed:  maphash.MakeSeed(),
		primary: make(map[uint64]idSlot[V]),
	}
}

func (x *idIndex[V]) hashes(id string) (key uint64, fp uint32) {
	return maphash.String(x.keySeed, id), uint32(maphash.String(x.fpSeed, id))
}

// get returns the value stored for id.
func (x *idIndex[V]) get(id string) (V, bool) {
	key, fp := x.hashes(id)
	return x.getHashed(id, key, fp)
}

func (x *idIndex[V]) getHashed(id string, key uint64, fp uint32) (V, bool) {
	if len(x.overflow) > 0 {
		if v, ok := x.overflow[id]; ok {
			return v, true
		}
	}
	if s, ok := x.primary[key]; ok && s.fp == fp {
		return s.v, true
	}
	var zero V
	return zero, false
}

// put stores v for id, replacing any earlier value.
func (x *idIndex[V]) put(id string, v V) {
	key, fp := x.hashes(id)
	x.putHashed(id, key, fp, v)
}

func (x *idIndex[V]) putHashed(id string, key uint64, fp uint32, v V) {
	if len(x.overflow) > 0 {
		if _, ok := x.overflow[id]; ok {
			x.overflow[id] = v
			return
		}
	}
	if s, ok := x.primary[key]; ok && s.fp != fp {
		if x.overflow == nil {
			x.overflow = make(map[string]V)
		}
		x.overflow[id] = v
		return
	}
	x.primary[key] = idSlot[V]{fp: fp, v: v}
}

// len returns the number of distinct ids stored.
func (x *idIndex[V]) len() int { return len(x.primary) + len(x.overflow) }

// each calls f with every stored value.
func (x *idIndex[V]) each(f func(V)) {
	for _, s := range x.primary {
		f(s.v)
	}
	for _, v := range x.overflow {
		f(v)
	}
}
