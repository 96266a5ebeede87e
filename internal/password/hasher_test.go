package password

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestHasherBound: with the bound held, a check waits MaxWait and gives ErrBusy without
// running; once room is given back it runs. Regression for issue 11 (sign-in floods: nothing
// bounded how many argon2id hashes ran at once).
func TestHasherBound(t *testing.T) {
	t.Parallel()
	h := NewHasher(HasherConfig{Slots: 1, SlotMemory: 64, MaxWait: 20 * time.Millisecond})
	hash, err := HashWith(cheap, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	release, err := h.Acquire(t.Context(), 64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Verify(t.Context(), hash, "correct horse"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Verify with the bound full: %v, want ErrBusy", err)
	}
	if _, err := h.Hash(t.Context(), cheap, "pw"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Hash with the bound full: %v, want ErrBusy", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := h.Verify(ctx, hash, "correct horse"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify with a canceled context: %v, want context.Canceled", err)
	}
	release()
	if ok, err := h.Verify(t.Context(), hash, "correct horse"); err != nil || !ok {
		t.Fatalf("Verify with room: ok=%v err=%v", ok, err)
	}
}

// TestHasherWeights: room is taken in proportion to a hash's memory, so cheap (imported)
// hashes run beside a full-cost one, and no more full-cost checks than slots run at once.
func TestHasherWeights(t *testing.T) {
	t.Parallel()
	h := NewHasher(HasherConfig{Slots: 2, SlotMemory: 1024, MaxWait: 20 * time.Millisecond})
	full, err := h.Acquire(t.Context(), 1024)
	if err != nil {
		t.Fatal(err)
	}
	// Half a slot is left: cheap hashes get it, a full one does not.
	if _, err := h.Hash(t.Context(), cheap, "imported"); err != nil {
		t.Fatalf("cheap hash beside a full one: %v", err)
	}
	half, err := h.Acquire(t.Context(), 512)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Acquire(t.Context(), 1024); !errors.Is(err, ErrBusy) {
		t.Fatalf("a full hash with half a slot left: %v, want ErrBusy", err)
	}
	// A hash larger than the whole bound takes the whole bound, not forever.
	half()
	full()
	all, err := h.Acquire(t.Context(), 1<<20)
	if err != nil {
		t.Fatalf("an oversized hash on an empty bound: %v", err)
	}
	all()
}

// TestHasherFlood: many concurrent checks never run more than Slots at once; those that do
// not get room in time are refused, none is lost.
func TestHasherFlood(t *testing.T) {
	t.Parallel()
	h := NewHasher(HasherConfig{Slots: 2, SlotMemory: 64, MaxWait: time.Millisecond})
	hash, err := HashWith(Params{Memory: 64, Time: 4, Threads: 1, KeyLen: 32, SaltLen: 16}, "pw")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		ok, busy   int
		unexpected []error
	)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			match, err := h.Verify(context.Background(), hash, "pw")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && match:
				ok++
			case errors.Is(err, ErrBusy):
				busy++
			default:
				unexpected = append(unexpected, err)
			}
		}()
	}
	wg.Wait()
	if len(unexpected) > 0 || ok+busy != 64 || ok == 0 {
		t.Fatalf("ok %d busy %d unexpected %v", ok, busy, unexpected)
	}
	// Every slot is free again.
	release, err := h.Acquire(t.Context(), 128)
	if err != nil {
		t.Fatalf("bound not given back: %v", err)
	}
	release()
}

// TestUpgrade: an imported (cheap) hash wrapped to full cost without the password still
// verifies the password, no longer counts as weaker, and has the documented PHC form.
func TestUpgrade(t *testing.T) {
	t.Parallel()
	full := Params{Memory: 256, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}
	imported, err := HashWith(cheap, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	up, err := Upgrade(imported, full)
	if err != nil {
		t.Fatal(err)
	}
	innerSalt := strings.Split(imported, "$")[4]
	if want := "$argon2id-onion$v=19$m=256,t=2,p=1,im=64,it=1,ip=1,il=32,is=" + innerSalt + "$"; !strings.HasPrefix(up, want) {
		t.Fatalf("upgraded hash %q, want prefix %q", up, want)
	}
	if ok, err := Verify(up, "correct horse"); err != nil || !ok {
		t.Fatalf("right password: ok=%v err=%v", ok, err)
	}
	if ok, err := Verify(up, "correct horsE"); err != nil || ok {
		t.Fatalf("wrong password: ok=%v err=%v", ok, err)
	}
	if Weaker(up, full) || !Weaker(imported, full) {
		t.Fatal("Weaker does not judge an upgraded hash by its outer costs")
	}
	if _, err := Upgrade(up, full); err == nil {
		t.Fatal("an upgraded hash was upgraded again")
	}
	// The onion's layers are bound together: swapping in another inner salt breaks it.
	other, _ := HashWith(cheap, "correct horse")
	forged := strings.Replace(up, "is="+innerSalt, "is="+strings.Split(other, "$")[4], 1)
	if ok, err := Verify(forged, "correct horse"); err != nil || ok {
		t.Fatalf("forged inner salt: ok=%v err=%v", ok, err)
	}

	h := NewHasher(HasherConfig{Slots: 1, SlotMemory: 256, MaxWait: time.Millisecond})
	// tryAcquire, not Acquire: Acquire gives up at once when its MaxWait of 1 ms has already
	// passed (a slow, -race run), which left the room free and made this test flaky.
	release, ok := h.tryAcquire(1)
	if !ok {
		t.Fatal("an idle Hasher refused room")
	}
	if _, err := h.UpgradeIdle(imported, full); !errors.Is(err, ErrBusy) {
		t.Fatalf("UpgradeIdle without room: %v, want ErrBusy at once", err)
	}
	release()
	up2, err := h.UpgradeIdle(imported, full)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := h.Verify(t.Context(), up2, "correct horse"); err != nil || !ok {
		t.Fatalf("Hasher.Verify of an upgraded hash: ok=%v err=%v", ok, err)
	}
}

func TestVerifyMalformedOnion(t *testing.T) {
	t.Parallel()
	const salt, key = "c2FsdHNhbHQ", "a2V5a2V5a2V5a2V5a2V5a2V5"
	for _, p := range []string{
		"m=64,t=1,p=1",                                   // no inner layer
		"m=64,t=1,p=1,im=64,it=1,ip=1,il=32",             // no inner salt
		"m=64,t=1,p=1,im=64,it=1,ip=1,is=" + salt,        // no inner length
		"m=64,t=1,p=1,im=0,it=1,ip=1,il=32,is=" + salt,   // zero memory
		"m=64,t=1,p=1,im=64,it=99,ip=1,il=32,is=" + salt, // absurd passes
		"m=64,t=1,p=1,im=64,it=1,ip=1,il=99999,is=" + salt,
		"m=64,t=1,p=1,im=64,it=1,ip=1,il=32,is=!!",
		"m=64,t=1,p=1,m=64,im=64,it=1,ip=1,il=32,is=" + salt, // repeated parameter
	} {
		h := "$" + OnionID + "$v=19$" + p + "$" + salt + "$" + key
		if ok, err := Verify(h, "x"); ok || err == nil {
			t.Errorf("%q: ok=%v err=%v", h, ok, err)
		}
	}
	if ok, err := Verify("$argon2id$v=19$m=64,t=1,p=1,x=1$"+salt+"$"+key, "x"); ok || err == nil {
		t.Errorf("plain hash with an unknown parameter: ok=%v err=%v", ok, err)
	}
}

// FuzzVerify: no stored hash, however malformed, panics or takes more than the bounds allow.
func FuzzVerify(f *testing.F) {
	imported, _ := HashWith(cheap, "pw")
	up, _ := Upgrade(imported, Params{Memory: 128, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16})
	f.Add(imported, "pw")
	f.Add(up, "pw")
	f.Add("$argon2id-onion$v=19$m=8,t=1,p=1,im=8,it=1,ip=1,il=16,is=c2FsdHNhbHQ$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", "")
	f.Fuzz(func(t *testing.T, hash, pw string) {
		d, err := decodeAny(hash)
		if err != nil {
			return
		}
		if d.p.Memory > 1<<10 || (d.inner != nil && d.inner.p.Memory > 1<<10) || d.p.Time > 2 {
			return // readable but too costly to run on every input
		}
		_, _ = Verify(hash, pw)
		_ = Weaker(hash, DefaultParams)
	})
}

// TestHasherAdmit: at most MaxPending places, refused at once beyond that, each given back
// once however often leave is called.
func TestHasherAdmit(t *testing.T) {
	t.Parallel()
	h := NewHasher(HasherConfig{Slots: 1, MaxPending: 2})
	a, err := h.Admit()
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Admit()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Admit(); !errors.Is(err, ErrBusy) {
		t.Fatalf("third place of two: %v, want ErrBusy", err)
	}
	a()
	a()
	c, err := h.Admit()
	if err != nil {
		t.Fatalf("after one left: %v", err)
	}
	if _, err := h.Admit(); !errors.Is(err, ErrBusy) {
		t.Fatalf("a repeated leave gave back two places: %v", err)
	}
	b()
	c()
	if d := NewHasher(HasherConfig{Slots: 3}).Config().MaxPending; d != 48 {
		t.Fatalf("default MaxPending %d, want 16 × Slots", d)
	}
}
