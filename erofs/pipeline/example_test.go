package pipeline_test

import (
	"fmt"
	"strings"

	"github.com/rafs-dev/rafs/erofs/pipeline"
)

// Upper-case words on three workers; the sink numbers them in the order
// they were submitted, whatever order the workers finish in.
func Example() {
	count := 0 // the sink's state
	p := pipeline.New(pipeline.Config{Workers: 3, Budget: 16},
		func(_ int, word string) (string, error) { return strings.ToUpper(word), nil },
		func(word, upper string) (string, error) {
			count++
			return fmt.Sprintf("%d:%s", count, upper), nil
		})
	var out []string
	for _, w := range strings.Fields("one ordered worker pipeline for both writers") {
		if err := p.Acquire(len(w)); err != nil {
			panic(err)
		}
		if err := p.Submit(w, len(w)); err != nil {
			panic(err)
		}
		out = p.Take(out)
	}
	if err := p.Close(); err != nil {
		panic(err)
	}
	out = p.Take(out)
	fmt.Println(strings.Join(out, " "))
	// Output: 1:ONE 2:ORDERED 3:WORKER 4:PIPELINE 5:FOR 6:BOTH 7:WRITERS
}
