package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dispatch24/dispatch24/pkg/events"
)

// natsCluster is one nats-server process, or three clustered ones, each with JetStream and
// its store in the run's temporary directory. Every node keeps its ports across restarts.
type natsCluster struct {
	nodes []*proc
	names []string
	urls  []string
}

func (w *world) startNATS(nodes int) error {
	c := &natsCluster{}
	clientPorts, err := freePorts(nodes)
	if err != nil {
		return err
	}
	routePorts, err := freePorts(nodes)
	if err != nil {
		return err
	}
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(p))
	}
	for i := range nodes {
		name := "n" + strconv.Itoa(i)
		args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(clientPorts[i]), "-n", name,
			"-js", "-sd", filepath.Join(w.tmp, "nats-"+name)}
		if nodes > 1 {
			args = append(args, "--cluster_name", "faults", "--cluster", routes[i], "--routes", strings.Join(routes, ","))
		}
		p := newProc("nats-"+name, w.bins.nats, filepath.Join(w.tmp, "nats-"+name+".log"), "Server is ready", baseEnv(), args...)
		w.addProc(p)
		c.nodes = append(c.nodes, p)
		c.names = append(c.names, name)
		c.urls = append(c.urls, "nats://127.0.0.1:"+strconv.Itoa(clientPorts[i]))
	}
	w.nats = c
	return c.startAll()
}

func (c *natsCluster) url() string { return strings.Join(c.urls, ",") }

// stopAll stops every node, by SIGTERM or by SIGKILL.
func (c *natsCluster) stopAll(kill bool) error {
	for _, p := range c.nodes {
		stop := p.term
		if kill {
			stop = p.kill9
		}
		if err := stop(); err != nil {
			return err
		}
	}
	return nil
}

// startAll starts every node and waits until each is ready.
func (c *natsCluster) startAll() error {
	for _, p := range c.nodes {
		if err := p.start(); err != nil {
			return err
		}
	}
	for _, p := range c.nodes {
		if err := p.waitReady(30 * time.Second); err != nil {
			return err
		}
	}
	return nil
}

// streamInfo asks the cluster ($JS.API.STREAM.INFO) about the events stream.
func (c *natsCluster) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	nc, err := nats.Connect(c.url(), nats.Name("fault-harness"), nats.Timeout(time.Second))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	s, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}

// leader returns the index of the node that leads the events stream, once the stream has
// its replicas and a leader.
func (c *natsCluster) leader(ctx context.Context, replicas int) (int, error) {
	var last error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		info, err := c.streamInfo(ctx)
		if err != nil {
			last = err
			continue
		}
		if info.Config.Replicas != replicas {
			return -1, fmt.Errorf("stream %s has %d replicas, want %d", events.StreamName, info.Config.Replicas, replicas)
		}
		if info.Cluster == nil || info.Cluster.Leader == "" {
			last = fmt.Errorf("stream %s has no leader yet", events.StreamName)
			continue
		}
		for i, n := range c.names {
			if n == info.Cluster.Leader {
				return i, nil
			}
		}
		return -1, fmt.Errorf("stream leader %q is none of %v", info.Cluster.Leader, c.names)
	}
	return -1, fmt.Errorf("finding the stream leader: %w", last)
}
