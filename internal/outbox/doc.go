// Package outbox publishes the events table — the transactional outbox — to JetStream.
//
// A service writes its change and the change's events in one store transaction (Relay.Add,
// or Insert for rows any relay may take), so an event exists exactly when the change does,
// whatever happens to NATS. After the commit it calls Relay.Notify and the relay publishes at
// once with asynchronous JetStream publishes (the fast path); Nats-Msg-Id is the event id. A
// row is marked published only after JetStream's ack.
//
// Rows written through Add carry a short lease (claimed_until) reserving them for the fast
// path of the process that wrote them. A periodic sweep, in every replica, claims rows
// nobody holds — released after a failed publish, or whose lease ran out because their
// process died between commit and publish — with FOR UPDATE SKIP LOCKED on PostgreSQL, so
// replicas share the backlog without double work. While NATS fails the sweep backs off
// exponentially; a reconnect (or Relay.Wake, which the api calls when its NATS link is set up
// again) ends the backoff at once, so the backlog drains as soon as NATS is back. Publishing is at least once: a row published but not yet marked when its
// process dies is published again, and JetStream's duplicate window stores it once.
package outbox
