package serve

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rafs-dev/rafs/convert/serve/queue"
)

// Metrics are rafs serve's Prometheus metrics, on a registry of their
// own (nothing is registered globally), every name prefixed rafs_:
//
//	rafs_tasks{status}                      tasks in the store by status (read at scrape time)
//	rafs_queue_depth                        PENDING tasks (read at scrape time)
//	rafs_conversion_seconds{type,result}    histogram of conversion attempts' durations
//	rafs_bytes_in_total, rafs_bytes_out_total  compressed bytes read from sources, written to targets
//	rafs_attempts_total{result}             finished attempts: completed, skipped, retry, failed, released, lease_lost
//	rafs_notifications_total{endpoint,code} requests to the two POST endpoints by HTTP status
//	rafs_pushes_total{outcome}              pushes received: queued, duplicate, ignored
//
// and the Go runtime's and the process's collectors (go_*, process_*).
// A nil *Metrics records nothing.
type Metrics struct {
	reg           *prometheus.Registry
	seconds       *prometheus.HistogramVec
	bytesIn       prometheus.Counter
	bytesOut      prometheus.Counter
	attempts      *prometheus.CounterVec
	notifications *prometheus.CounterVec
	pushes        *prometheus.CounterVec
}

// NewMetrics returns the metrics, with rafs_tasks and rafs_queue_depth
// read from q (q.Counts) at each scrape when q is not nil.
func NewMetrics(q queue.Queue) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rafs_conversion_seconds",
			Help:    "Duration of conversion attempts, by type (nydus, erofs, or the types joined by +) and result.",
			Buckets: prometheus.ExponentialBuckets(0.5, 2, 14), // 0.5 s to about 68 min
		}, []string{"type", "result"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rafs_bytes_in_total", Help: "Compressed bytes of source layers read by completed conversions.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rafs_bytes_out_total", Help: "Bytes of converted layers written by completed conversions.",
		}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rafs_attempts_total", Help: "Finished conversion attempts by result: completed, skipped, retry, failed, released, lease_lost.",
		}, []string{"result"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rafs_notifications_total", Help: "Requests to the notification and conversion endpoints, by endpoint and HTTP status code.",
		}, []string{"endpoint", "code"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rafs_pushes_total", Help: "Pushes received, by outcome: queued (a new task), duplicate (its task existed), ignored (no rule, or a converted image).",
		}, []string{"outcome"}),
	}
	m.reg.MustRegister(m.seconds, m.bytesIn, m.bytesOut, m.attempts, m.notifications, m.pushes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if q != nil {
		m.reg.MustRegister(&queueCollector{
			q:     q,
			tasks: prometheus.NewDesc("rafs_tasks", "Tasks in the store, by status.", []string{"status"}, nil),
			depth: prometheus.NewDesc("rafs_queue_depth", "PENDING tasks in the store.", nil, nil),
		})
	}
	return m
}

// Registry returns the Prometheus registry the metrics are on, to add
// more or to gather them.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *Metrics) attempt(types, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.seconds.WithLabelValues(types, result).Observe(d.Seconds())
	m.attempts.WithLabelValues(result).Inc()
}

func (m *Metrics) bytes(in, out int64) {
	if m == nil {
		return
	}
	m.bytesIn.Add(float64(in))
	m.bytesOut.Add(float64(out))
}

func (m *Metrics) notification(endpoint string, code int) {
	if m == nil {
		return
	}
	m.notifications.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
}

func (m *Metrics) push(outcome string) {
	if m == nil {
		return
	}
	m.pushes.WithLabelValues(outcome).Inc()
}

// queueCollector reads the store's counts at scrape time.
type queueCollector struct {
	q            queue.Queue
	tasks, depth *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.tasks
	ch <- c.depth
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.q.Counts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.tasks, err)
		return
	}
	for _, s := range []queue.Status{queue.Pending, queue.Running, queue.Completed, queue.Failed} {
		ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(counts[queue.Pending]))
}
