// Package serve is rafs serve: an HTTP service that converts images as
// they are pushed to a registry.
//
// A registry notifies the Server of pushes (the distribution registry's
// notification envelope, ParseNotifications, or Harbor's webhook,
// ParseHarborWebhook). The Config's rules make tasks of the pushes
// (Config.Tasks), which the Server stores in a queue.Queue before it
// answers. A Runner's workers claim the tasks, convert each source into
// its targets registry to registry (image.ConvertToRegistry, layers
// uploaded while they are converted), and report the result; a task
// failing with a registry error is retried with backoff. Converted
// manifests carry AnnotationSource and AnnotationTask: a target already
// holding its task's ID is not converted again, and a source carrying
// AnnotationSource (or Nydus or EROFS layers) is a converted image, never
// converted. Metrics are Prometheus metrics on a registry of their own.
//
// The stores are in subpackages: boltqueue (one process, a bbolt file)
// and redisqueue (replicas sharing Redis streams).
package serve
