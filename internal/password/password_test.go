package password

import (
	"strings"
	"testing"
)

var cheap = Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

func TestHashVerify(t *testing.T) {
	t.Parallel()
	h, err := HashWith(cheap, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("unexpected format %q", h)
	}
	if ok, err := Verify(h, "correct horse"); err != nil || !ok {
		t.Fatalf("right password: ok=%v err=%v", ok, err)
	}
	if ok, err := Verify(h, "correct horsE"); err != nil || ok {
		t.Fatalf("wrong password: ok=%v err=%v", ok, err)
	}
	h2, _ := HashWith(cheap, "correct horse")
	if h == h2 {
		t.Fatal("two hashes of one password share a salt")
	}
}

func TestVerifyMalformed(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$!!$a2V5a2V5a2V5a2V5a2V5a2V5"} {
		if ok, err := Verify(h, "x"); ok || err == nil {
			t.Errorf("%q: ok=%v err=%v", h, ok, err)
		}
	}
}

func TestDummyNeverMatches(t *testing.T) {
	t.Parallel()
	if ok, err := Verify(Dummy(), ""); err != nil || ok {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
}

func TestWeaker(t *testing.T) {
	cheap := Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}
	h, err := HashWith(cheap, "pw")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		want Params
		weak bool
	}{
		{cheap, false},
		{Params{Memory: 64, Time: 2}, true},
		{Params{Memory: 128, Time: 1}, true},
		{Params{Memory: 32, Time: 1}, false},
		{DefaultParams, true},
	} {
		if got := Weaker(h, tc.want); got != tc.weak {
			t.Errorf("Weaker(m=64,t=1, %+v) = %v, want %v", tc.want, got, tc.weak)
		}
	}
	if Weaker("not a hash", DefaultParams) {
		t.Error("an unreadable hash counts as weaker")
	}
}
