package serve_test

import (
	"fmt"
	"log"

	"github.com/rafs-dev/rafs/convert/serve"
)

// The distribution registry notifies a push of an image by tag with one
// event per blob and one for the manifest; only the manifest's is a
// conversion's source.
func ExampleParseNotifications() {
	body := []byte(`{"events": [
	  {"action": "push",
	   "target": {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "repository": "library/debian",
	              "digest": "sha256:9b1f1c7e84ac4fd4bb5e6e6c1b4c3e5d04bd0a3a8e2b2bbdc0e7b5e4c3a2f1d0"},
	   "request": {"host": "localhost:5000", "method": "PUT"}},
	  {"action": "push",
	   "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": "library/debian", "tag": "bookworm",
	              "digest": "sha256:2cbf9fc6d2a5ad2b6ac3d9a2f9e96e1b6cfa3f3f0c2b6a2c31a0d3d1a8a9d2b1"},
	   "request": {"host": "localhost:5000", "method": "PUT"}}
	]}`)
	pushes, err := serve.ParseNotifications(body)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range pushes {
		fmt.Println(p.Ref(), p.Tag)
	}
	_, err = serve.ParseNotifications([]byte(`{"events": [{"action": "push", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json"}}]}`))
	fmt.Println(err)
	// Output:
	// localhost:5000/library/debian@sha256:2cbf9fc6d2a5ad2b6ac3d9a2f9e96e1b6cfa3f3f0c2b6a2c31a0d3d1a8a9d2b1 bookworm
	// notification envelope: events[0].target.repository: missing
}

// Harbor names the registry by its external URL in resource_url.
func ExampleParseHarborWebhook() {
	body := []byte(`{"type": "PUSH_ARTIFACT", "occur_at": 1764817200, "operator": "admin",
	  "event_data": {
	    "resources": [{"digest": "sha256:2cbf9fc6d2a5ad2b6ac3d9a2f9e96e1b6cfa3f3f0c2b6a2c31a0d3d1a8a9d2b1", "tag": "v1",
	                   "resource_url": "harbor.example.com/library/nginx:v1"}],
	    "repository": {"name": "nginx", "namespace": "library", "repo_full_name": "library/nginx", "repo_type": "public"}}}`)
	pushes, err := serve.ParseHarborWebhook(body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%+v\n", pushes[0])
	// Output:
	// {Registry:harbor.example.com Repository:library/nginx Tag:v1 Digest:sha256:2cbf9fc6d2a5ad2b6ac3d9a2f9e96e1b6cfa3f3f0c2b6a2c31a0d3d1a8a9d2b1 MediaType:}
}

// A configuration of two rules, and the tasks they make of pushes.
func ExampleConfig_Tasks() {
	cfg, err := serve.ParseConfig([]byte(`{
	  "rules": [
	    {"name": "base", "repositories": ["library/*"], "types": ["nydus", "erofs"],
	     "link": "referrer", "options": ["--platform", "linux/amd64"], "cache": "rafs-cache"},
	    {"name": "apps", "repositories": ["apps/*"], "tags": ["v*"], "types": ["erofs"],
	     "suffix": "", "targetRepository": "erofs/{repo}", "options": ["-z", "lz4hc", "--tar-index"]}
	  ],
	  "registries": {"localhost:5000": {"plainHTTP": true}}
	}`))
	if err != nil {
		log.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		log.Fatal(err)
	}
	const dgst = "sha256:2cbf9fc6d2a5ad2b6ac3d9a2f9e96e1b6cfa3f3f0c2b6a2c31a0d3d1a8a9d2b1"
	for _, p := range []serve.Push{
		{Registry: "localhost:5000", Repository: "library/debian", Tag: "bookworm", Digest: dgst},
		{Registry: "localhost:5000", Repository: "apps/web", Tag: "v1.2", Digest: dgst},
		{Registry: "localhost:5000", Repository: "library/debian", Tag: "bookworm-nydus", Digest: dgst},
		{Registry: "localhost:5000", Repository: "erofs/apps/web", Tag: "v1.2", Digest: dgst},
		{Registry: "localhost:5000", Repository: "apps/web", Tag: "latest", Digest: dgst},
	} {
		tasks, ignored := cfg.Tasks(p)
		if len(tasks) == 0 {
			fmt.Printf("%s:%s: ignored: %s\n", p.Repository, p.Tag, ignored)
		}
		for _, t := range tasks {
			fmt.Printf("%s:%s: rule %s: %v, link %s, options %q\n", p.Repository, p.Tag, t.Rule, t.Targets, t.Link, t.Options)
		}
	}
	fmt.Println("plain HTTP:", cfg.PlainHTTP("localhost:5000"))
	// Output:
	// library/debian:bookworm: rule base: [localhost:5000/library/debian:bookworm-nydus localhost:5000/library/debian:bookworm-erofs], link referrer, options ["--platform" "linux/amd64" "--cache" "rafs-cache"]
	// apps/web:v1.2: rule apps: [localhost:5000/erofs/apps/web:v1.2], link none, options ["-z" "lz4hc" "--tar-index"]
	// library/debian:bookworm-nydus: ignored: a converted image: tag bookworm-nydus ends in -nydus, rule "base"'s suffix
	// erofs/apps/web:v1.2: ignored: a converted image: repository erofs/apps/web is a target repository of rule "apps"
	// apps/web:latest: ignored: no rule matches
	// plain HTTP: true
}

// Validate names the rule of each problem.
func ExampleConfig_Validate() {
	cfg := &serve.Config{Rules: []serve.Rule{
		{Name: "both", Types: []string{"nydus", "erofs"}, Suffix: new("-rafs")},
		{Name: "typo", Types: []string{"erfos"}, Link: "subject"},
	}}
	fmt.Println(cfg.Validate())
	// Output:
	// rule "both": types nydus and erofs would be pushed to the same target: put {type} in the suffix or the targetRepository
	// rule "typo": unknown type "erfos" (want nydus or erofs)
	// rule "typo": unknown link "subject" (want none, referrer or merge-index)
}
