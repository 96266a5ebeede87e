package dispatch

import "github.com/nats-io/nats.go/jetstream"

// acker settles a message once every delivery it fanned out to is recorded. The engine acks
// on the server (jetStreamAcker); tests that watch or withhold acks give the Dispatcher their
// own, so the production types carry no test hooks.
type acker interface {
	ack(msg jetstream.Msg)
}

// jetStreamAcker acks on the server: the message is done.
type jetStreamAcker struct{}

func (jetStreamAcker) ack(msg jetstream.Msg) { _ = msg.Ack() }
