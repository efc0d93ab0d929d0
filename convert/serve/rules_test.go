package serve

import (
	"path"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rafs-dev/rafs/convert/serve/queue"
)

func TestTasks(t *testing.T) {
	c := &Config{Rules: []Rule{
		{Name: "base", Repositories: []string{"library/*"}, Types: []string{"nydus", "erofs"}, Link: "referrer",
			Options: []string{"-z", "lz4hc"}, Cache: "rafs-cache"},
		{Name: "apps", Registry: "registry.example.com", Repositories: []string{"apps/*", "library/debian"}, Tags: []string{"v*"},
			Suffix: ptr(""), TargetRepository: "nydus/{repo}"},
		{Name: "erofs-mirror", Repositories: []string{"mirror/*"}, Types: []string{"erofs"}, TargetRepository: "erofs-{repo}"},
	}}
	mustNoErr(t, c.Validate())
	push := func(reg, repo, tag string) Push {
		return Push{Registry: reg, Repository: repo, Tag: tag, Digest: dgstA, MediaType: "application/vnd.oci.image.index.v1+json"}
	}

	tasks, ignored := c.Tasks(push("localhost:5000", "library/debian", "bookworm"))
	wantEqual(t, ignored, "")
	want := queue.Task{
		Source:    "localhost:5000/library/debian@" + dgstA,
		SourceTag: "bookworm",
		Targets:   []string{"localhost:5000/library/debian:bookworm-nydus", "localhost:5000/library/debian:bookworm-erofs"},
		Types:     []string{"nydus", "erofs"},
		Rule:      "base",
		Link:      "referrer",
		Options:   []string{"-z", "lz4hc", "--cache", "rafs-cache"},
	}
	want.ID = TaskID(want)
	wantEqual(t, tasks, []queue.Task{want})
	// The rule's options are not shared with the task's.
	tasks[0].Options[0] = "changed"
	wantEqual(t, c.Rules[0].Options[0], "-z")

	tasks, ignored = c.Tasks(push("registry.example.com", "library/debian", "v2"))
	wantEqual(t, ignored, "")
	if len(tasks) != 2 {
		t.Fatalf("tasks %+v, want two", tasks)
	}
	wantEqual(t, tasks[1].Targets, []string{"registry.example.com/nydus/library/debian:v2"})
	wantEqual(t, tasks[1].Rule, "apps")
	wantEqual(t, tasks[1].Link, "none")
	wantEqual(t, tasks[1].Options, []string(nil))
	if tasks[0].ID == tasks[1].ID {
		t.Errorf("two rules' tasks share ID %s", tasks[0].ID)
	}

	tasks, ignored = c.Tasks(push("h", "mirror/x", "latest"))
	wantEqual(t, ignored, "")
	wantEqual(t, tasks[0].Targets, []string{"h/erofs-mirror/x:latest-erofs"})

	for p, why := range map[Push]string{
		push("h", "library/debian", ""):                            "pushed by digest",
		push("h", "library/debian", "bookworm-nydus"):              `a converted image: tag bookworm-nydus ends in -nydus, rule "base"'s suffix`,
		push("h", "library/debian", "bookworm-erofs"):              `ends in -erofs, rule "base"'s suffix`,
		push("h", "library/debian", "rafs-cache"):                  `a layer cache: tag rafs-cache is rule "base"'s cache`,
		push("h", "apps/x", "latest"):                              "no rule matches",
		push("registry.example.com", "apps/x/y", "v1"):             "no rule matches",
		push("registry.example.com", "nydus/apps/x", "v1"):         `a converted image: repository nydus/apps/x is a target repository of rule "apps"`,
		push("h", "erofs-mirror/x", "v1"):                          `repository erofs-mirror/x is a target repository of rule "erofs-mirror"`,
		push("h", "library/"+strings.Repeat("a", 10), "v1x"):       "",
		push("h", "library/a", strings.Repeat("t", 125)):           `rule "base": target h/library/a:ttt`,
		push("registry.example.com", "nydus/other/x", "v1"):        "no rule matches",
		push("registry.example.com", "nydus/library/debian", "v1"): `a converted image: repository nydus/library/debian is a target repository of rule "apps"`,
	} {
		tasks, ignored := c.Tasks(p)
		if why == "" {
			if len(tasks) == 0 || ignored != "" {
				t.Errorf("%+v: tasks %v, ignored %q; want tasks", p, tasks, ignored)
			}
			continue
		}
		if len(tasks) != 0 || !strings.Contains(ignored, why) {
			t.Errorf("%+v: tasks %v, ignored %q; want none, %q", p, tasks, ignored, why)
		}
	}

	// A rule that cannot name its target leaves the others' tasks.
	c2 := &Config{Rules: []Rule{{Name: "long", Suffix: ptr("-" + strings.Repeat("x", 100) + "-{type}")}, {Name: "short", Suffix: ptr("-n")}}}
	mustNoErr(t, c2.Validate())
	tasks, ignored = c2.Tasks(push("h", "r", strings.Repeat("t", 30)))
	if len(tasks) != 1 || tasks[0].Rule != "short" || !strings.Contains(ignored, `rule "long": target`) {
		t.Errorf("tasks %+v, ignored %q", tasks, ignored)
	}

	// A rule overwriting its cache tag makes no task (Validate refuses
	// such a rule; Tasks does not rely on it).
	c3 := &Config{Rules: []Rule{{Name: "c", Cache: "x-cache", Suffix: ptr("-cache")}}}
	wantErrContains(t, c3.Validate(), `cache "x-cache": a tag the nydus target of a source could have`)
	if tasks, ignored := c3.Tasks(push("h", "r", "x")); len(tasks) != 0 || !strings.Contains(ignored, "overwrite the layer cache") {
		t.Errorf("tasks %+v, ignored %q", tasks, ignored)
	}
	// Unnamed rules are named by position.
	if tasks, _ := (&Config{Rules: []Rule{{}}}).Tasks(push("h", "r", "x")); len(tasks) != 1 || tasks[0].Rule != "rule-1" {
		t.Errorf("tasks %+v", tasks)
	}
}

func TestTaskID(t *testing.T) {
	base := queue.Task{
		Source:  "localhost:5000/library/debian@" + dgstA,
		Targets: []string{"localhost:5000/library/debian:v1-nydus"},
		Types:   []string{"nydus"},
		Link:    "referrer",
		Options: []string{"-z", "lz4hc"},
	}
	id := TaskID(base)
	// A fixed value: IDs are stored in queues and converted manifests,
	// so they must not change between machines or versions.
	wantEqual(t, id, "842b620925cab07d65b7980134ea50c2")
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Errorf("ID %q is not 32 hex digits", id)
	}
	same := base
	same.Source = "registry.internal/library/debian@" + dgstA // another name of the registry
	same.SourceTag, same.Rule, same.Status, same.Attempts = "v1", "r", queue.Running, 3
	wantEqual(t, TaskID(same), id)
	none1, none2 := base, base
	none1.Link, none2.Link = "", "none"
	wantEqual(t, TaskID(none1), TaskID(none2))

	for name, change := range map[string]func(*queue.Task){
		"digest":   func(t *queue.Task) { t.Source = "localhost:5000/library/debian@" + dgstB },
		"target":   func(t *queue.Task) { t.Targets = []string{"localhost:5000/library/debian:v1-n"} },
		"targets":  func(t *queue.Task) { t.Targets = append(t.Targets, "") },
		"type":     func(t *queue.Task) { t.Types = []string{"erofs"} },
		"link":     func(t *queue.Task) { t.Link = "merge-index" },
		"options":  func(t *queue.Task) { t.Options = []string{"-z", "lz4"} },
		"split":    func(t *queue.Task) { t.Options = []string{"-zlz4hc"} },
		"moved":    func(t *queue.Task) { t.Options = nil; t.Types = []string{"nydus", "-z", "lz4hc"} },
		"no opts":  func(t *queue.Task) { t.Options = nil },
		"no types": func(t *queue.Task) { t.Types = nil },
	} {
		tk := base
		change(&tk)
		if TaskID(tk) == id {
			t.Errorf("%s: same ID", name)
		}
	}
}

func TestGlobsIntersect(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"library/*", "*/debian", true},
		{"library/*", "apps/*", false},
		{"*", "*/*", false},
		{"*", "a", true},
		{"a*", "*b", true},
		{"a*c", "*b", false},
		{"v[0-4]*", "v[5-9]*", false},
		{"v[0-5]*", "v[5-9]*", true},
		{"v[^0-9]", "v?", true},
		{"v[^0-9]", "v[0-9]", false},
		{"?", "/", false},
		{"a?c", "a/c", false},
		{"a[/]c", "a/c", true},
		{`\*`, "*", true},
		{`\*`, "a", false},
		{"*x*y*", "*y*x*", true},
		{"ü*", "[ü]", true},
		{"", "*", true},
		{"", "?", false},
	} {
		if got := globsIntersect(c.a, c.b); got != c.want {
			t.Errorf("globsIntersect(%q, %q) = %v", c.a, c.b, got)
		}
		if got := globsIntersect(c.b, c.a); got != c.want {
			t.Errorf("globsIntersect(%q, %q) = %v", c.b, c.a, got)
		}
	}
}

// sampleStrings are the strings up to length n over alphabet.
func sampleStrings(alphabet []rune, n int) []string {
	out := []string{""}
	prev := []string{""}
	for range n {
		var next []string
		for _, s := range prev {
			for _, r := range alphabet {
				next = append(next, s+string(r))
			}
		}
		out = append(out, next...)
		prev = next
	}
	return out
}

// FuzzGlobsIntersect checks globsIntersect against brute force: over an
// alphabet of the globs' runes, their neighbours and a few others, when
// a string of up to 3 runes matches both globs, globsIntersect must say
// they meet; when the globs have no star and at most 3 tokens each (so a
// common string has at most 3 runes), it must not say they meet unless
// such a string exists.
func FuzzGlobsIntersect(f *testing.F) {
	for _, s := range [][2]string{{"a*", "*b"}, {"[a-]?", "-/"}, {"*/*", "a"}, {"[^a]*", "a*"}, {"?", "]"}, {"[!-#]", `\"`}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if len(a) > 12 || len(b) > 12 || !utf8.ValidString(a+b) {
			return
		}
		if _, err := path.Match(a, ""); err != nil {
			return
		}
		if _, err := path.Match(b, ""); err != nil {
			return
		}
		set := map[rune]bool{'a': true, 'z': true, '/': true, 0: true}
		for _, r := range a + b + "/" {
			set[r-1], set[r], set[r+1] = true, true, true
		}
		var alphabet []rune
		for r := range set {
			if utf8.ValidRune(r) {
				alphabet = append(alphabet, r)
			}
		}
		got := globsIntersect(a, b)
		var both string
		found := false
		for _, s := range sampleStrings(alphabet, 3) {
			if globMatch(a, s) && globMatch(b, s) {
				both, found = s, true
				break
			}
		}
		if found && !got {
			t.Fatalf("globsIntersect(%q, %q) = false, but both match %q", a, b, both)
		}
		ta, tb := globTokens(a), globTokens(b)
		if got && !found && len(ta) <= 3 && len(tb) <= 3 && !strings.Contains(a+b, "*") {
			t.Fatalf("globsIntersect(%q, %q) = true, but no string matches both", a, b)
		}
	})
}
