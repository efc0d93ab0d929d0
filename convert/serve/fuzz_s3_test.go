package serve

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// checkPush fails t if a parsed push is not one a task can be made of.
func checkPush(t *testing.T, p Push) {
	t.Helper()
	if _, err := digest.Parse(p.Digest); err != nil {
		t.Fatalf("push %+v: digest: %v", p, err)
	}
	if p.Repository == "" || checkHost(p.Registry) != nil {
		t.Fatalf("push %+v: no repository or a bad registry", p)
	}
}

// fuzzConfig is a valid config with rules of every kind, to make tasks of
// fuzzed pushes.
var fuzzConfig = &Config{Rules: []Rule{
	{Name: "a", Types: []string{"nydus", "erofs"}, Cache: "cache"},
	{Name: "b", Repositories: []string{"x/*"}, Suffix: ptr(""), TargetRepository: "nydus/{repo}"},
}}

func FuzzParseNotifications(f *testing.F) {
	f.Add([]byte(envelope28))
	f.Add([]byte(`{"events":[]}`))
	f.Add([]byte(`{"events":[{"action":"push","target":{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"` + dgstA + `","repository":"r","url":"http://h:1/v2/r/manifests/x"}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		pushes, err := ParseNotifications(body)
		if err != nil {
			if pushes != nil {
				t.Fatal("pushes with an error")
			}
			return
		}
		for _, p := range pushes {
			checkPush(t, p)
			if !IsImageMediaType(p.MediaType) {
				t.Fatalf("push %+v: not an image media type", p)
			}
			fuzzConfig.Tasks(p)
		}
	})
}

func FuzzParseHarborWebhook(f *testing.F) {
	f.Add([]byte(harborPush))
	f.Add([]byte(`{"type":"PUSH_ARTIFACT","event_data":{"resources":[{"resource_url":"h:1/p/a@` + dgstA + `"}]}}`))
	f.Add([]byte(`{"type":"DELETE_ARTIFACT"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		pushes, err := ParseHarborWebhook(body)
		if err != nil {
			if pushes != nil {
				t.Fatal("pushes with an error")
			}
			return
		}
		for _, p := range pushes {
			checkPush(t, p)
			fuzzConfig.Tasks(p)
		}
	})
}

// FuzzConfig parses and validates fuzzed configs and, for a valid one,
// checks what its tasks promise: IDs from TaskID, valid and distinct
// targets, none the source, and no loop (a target pushed back makes no
// task).
func FuzzConfig(f *testing.F) {
	f.Add([]byte(`{"rules":[{}]}`), "library/debian", "v1")
	f.Add([]byte(`{"rules":[{"name":"a","repositories":["library/*"],"types":["nydus","erofs"],"link":"referrer","options":["-z","zstd"],"cache":"c"},
		{"name":"b","registry":"h:*","tags":["v*"],"suffix":"","targetRepository":"{type}/{repo}"}],
		"registries":{"h:1":{"plainHTTP":true}}}`), "library/x", "v2")
	f.Add([]byte(`{"rules":[{"suffix":"_{type}","targetRepository":"m/{repo}-{type}","types":["erofs","nydus"]},{"suffix":"","targetRepository":"const"}]}`), "a/b", "t")
	f.Add([]byte(`{"rules":[{"suffix":"","targetRepository":"{repo}x"}]}`), "ab", "t")
	f.Fuzz(func(t *testing.T, data []byte, repo, tag string) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if len(c.Registries) > 0 {
			// No file system access from the fuzzer.
			for h, r := range c.Registries {
				r.PasswordFile, r.DockerConfig = "", ""
				c.Registries[h] = r
			}
		}
		c.DockerConfig = ""
		if c.Validate() != nil {
			return
		}
		for _, reg := range []string{"h:1", "registry.example.com"} {
			p := Push{Registry: reg, Repository: repo, Tag: tag, Digest: dgstA}
			tasks, ignored := c.Tasks(p)
			if len(tasks) == 0 && ignored == "" {
				t.Fatalf("%+v: no tasks and no reason", p)
			}
			seen := map[string]bool{}
			for _, task := range tasks {
				if task.ID != TaskID(task) || task.Source != p.Ref() || len(task.Targets) != len(task.Types) {
					t.Fatalf("task %+v", task)
				}
				for _, target := range task.Targets {
					if seen[target] {
						t.Fatalf("%+v: target %s twice", p, target)
					}
					seen[target] = true
					host, rest, _ := strings.Cut(target, "/")
					i := strings.LastIndexByte(rest, ':')
					back := Push{Registry: host, Repository: rest[:i], Tag: rest[i+1:], Digest: dgstB}
					if err := checkRepoTag(back.Repository, back.Tag); err != nil {
						t.Fatalf("%+v: target %s: %v", p, target, err)
					}
					if back.Registry == p.Registry && back.Repository == p.Repository && back.Tag == p.Tag {
						t.Fatalf("%+v: target %s is the source", p, target)
					}
					if tasks, _ := c.Tasks(back); len(tasks) != 0 {
						t.Fatalf("%+v: target %s pushed back makes tasks %+v (a loop)", p, target, tasks)
					}
				}
			}
		}
	})
}
