package webhook_test

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/dispatch24/dispatch24/pkg/webhook"
)

func ExampleSign() {
	sig, err := webhook.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0),
		[]byte(`{"test": 2432232314}`), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		panic(err)
	}
	fmt.Println(sig)
	// Output: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
}

func ExampleVerifier_Verify() {
	v, err := webhook.NewVerifier(webhook.VerifierConfig{
		Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		// A fixed clock so the example's old timestamp is current; leave NowFunc unset.
		NowFunc: func() time.Time { return time.Unix(1614265330, 0) },
	})
	if err != nil {
		panic(err)
	}
	header := http.Header{}
	header.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	header.Set("webhook-timestamp", "1614265330")
	header.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")

	d, err := v.Verify(header, []byte(`{"test": 2432232314}`))
	fmt.Println(d.ID, err)

	_, err = v.Verify(header, []byte(`{"test": 1}`))
	fmt.Println(errors.Is(err, webhook.ErrInvalidSignature))
	// Output:
	// msg_p5jXN8AQM9LWM0D4loKWxJek <nil>
	// true
}

// A v1a endpoint: the sender signs with the whsk_ key, the receiver verifies with its whpk_
// public key. (NewSigningKey makes a fresh pair; this one is fixed so the output is.)
func ExampleSign_v1a() {
	const (
		signingKey = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2DXWpgBgrEKt9VL/tPJZAc6DuFy89qmIyWvAhpo9wdRGg=="
		publicKey  = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
	)
	body := []byte(`{"test": 2432232314}`)
	sig, err := webhook.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), body, signingKey)
	if err != nil {
		panic(err)
	}
	fmt.Println(sig)

	v, err := webhook.NewVerifier(webhook.VerifierConfig{
		PublicKeys: []string{publicKey},
		NowFunc:    func() time.Time { return time.Unix(1614265330, 0) },
	})
	if err != nil {
		panic(err)
	}
	header := http.Header{}
	header.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	header.Set("webhook-timestamp", "1614265330")
	header.Set("webhook-signature", sig)
	_, err = v.Verify(header, body)
	fmt.Println(err)
	// Output:
	// v1a,fldxM4gAKugP6nnt1hdz3sgGfZ6d99nzrMFnZOELIxbzEHoVmAb2ADpkJK7zgPePmPsle0zV9jSeGlHFG2NVAw==
	// <nil>
}
