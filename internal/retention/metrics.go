package retention

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The tables of the metrics' table label.
const (
	tableDeliveries = "deliveries"
	tableAttempts   = "delivery_attempts"
	tableEvents     = "events"
	tableTombstones = "delivery_tombstones"
)

type metrics struct {
	purged        *prometheus.CounterVec
	batchDuration prometheus.Histogram
	lastDuration  prometheus.Gauge
	lastSuccess   prometheus.Gauge
	oldest        *oldestAges
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		purged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatch24_retention_purged_rows_total", Help: "Rows deleted by the retention purge, by table.",
		}, []string{"table"}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dispatch24_retention_batch_duration_seconds", Help: "Duration of the retention purge's delete transactions.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		lastDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dispatch24_retention_last_purge_duration_seconds", Help: "Duration of this process's last complete retention purge.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dispatch24_retention_last_success_timestamp_seconds", Help: "When this process last completed a retention purge (Unix time).",
		}),
		oldest: &oldestAges{desc: prometheus.NewDesc("dispatch24_retention_oldest_age_seconds",
			"Age of the oldest retained row by table, as of this process's last purge: the oldest finished delivery by last activity, the oldest published event by publication (pending deliveries keep theirs).",
			[]string{"table"}, nil), at: map[string]time.Time{}},
	}
	for _, t := range []string{tableDeliveries, tableAttempts, tableEvents, tableTombstones} {
		m.purged.WithLabelValues(t) // every table shows, 0 until it has purged
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.purged, m.batchDuration, m.lastDuration, m.lastSuccess, m.oldest} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// batch records one delete transaction and its rows (table2 empty: one table).
func (m *metrics) batch(took time.Duration, table string, n int, table2 string, n2 int) {
	m.batchDuration.Observe(took.Seconds())
	m.purged.WithLabelValues(table).Add(float64(n))
	if table2 != "" {
		m.purged.WithLabelValues(table2).Add(float64(n2))
	}
}

// oldestAges reports, at scrape time, how old the oldest retained row of each table that the
// last purge found is now (0 for none; nothing before the first purge). Pending deliveries,
// kept however old, are left out; the events they keep are not. Attempts go with their
// delivery and have no series of their own.
type oldestAges struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	at   map[string]time.Time // the oldest row's time; zero: the table had none
}

func (o *oldestAges) set(table string, t time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.at[table] = t
}

func (o *oldestAges) Describe(ch chan<- *prometheus.Desc) { ch <- o.desc }

func (o *oldestAges) Collect(ch chan<- prometheus.Metric) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for table, t := range o.at {
		age := 0.0
		if !t.IsZero() {
			age = max(time.Since(t).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(o.desc, prometheus.GaugeValue, age, table)
	}
}
