package verity_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/erofs/verity"
)

// ExampleAppend builds an EROFS image, appends its dm-verity hash tree and
// writes containerd's metadata file beside it, as containerd's EROFS
// differ leaves a layer with enable_dmverity: its snapshotter then mounts
// the layer through a verity device. The same image and salt always give
// the same root hash.
func ExampleAppend() {
	dir, err := os.MkdirTemp("", "rafs-verity-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "layer.erofs")
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()

	w, err := erofs.NewWriter(f, &erofs.WriterOptions{UUID: &[16]byte{}})
	if err != nil {
		log.Fatal(err)
	}
	motd := "integrity\n"
	if err := w.Add(&erofs.Entry{Path: "etc/motd", Mode: erofs.ModeRegular | 0o644, Size: int64(len(motd))}, strings.NewReader(motd)); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	// The zero Options: 4096-byte blocks, a superblock, containerd's salt.
	res, err := verity.Append(f, w.Size(), nil)
	if err != nil {
		log.Fatal(err)
	}
	meta, err := res.Metadata()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path+verity.MetadataSuffix, meta, 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("image %d bytes, hash area at %d, file %d bytes\n", w.Size(), res.HashOffset, res.Size)
	fmt.Println("root hash", res.RootHashHex())
	fmt.Println("salt", res.SaltHex())
	// Output:
	// image 8192 bytes, hash area at 8192, file 16384 bytes
	// root hash 22ee869db7ddb7fb131a41eccc63b76f51dbd8c35b69ee83f9ed4c93030884eb
	// salt 0000000000000000000000000000000000000000000000000000000000000000
}
