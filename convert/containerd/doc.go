// Package containerd plugs rafs into containerd's image converter
// (github.com/containerd/containerd/v2/core/images/converter): converter
// ConvertFuncs that convert layers to EROFS or to Nydus in-process, with
// no mkfs.erofs or nydus-image binary, as drop-ins for containerd's
// core/images/converter/erofs.LayerConvertFunc and nydus-snapshotter's
// pkg/converter.LayerConvertFunc and ConvertHookFunc.
//
// Converting an image in containerd's content store to Nydus:
//
//	opts := &image.Options{Type: image.TypeNydus}
//	conv := converter.IndexConvertFuncWithHook(containerd.NydusLayerConvertFunc(opts), true, platforms.All,
//		converter.ConvertHooks{PostConvertHook: containerd.NydusConvertHookFunc(opts)})
//	newDesc, err := conv(ctx, cs, srcDesc)
//
// and to EROFS:
//
//	opts := &image.Options{Type: image.TypeEROFS}
//	img, err := converter.Convert(ctx, client, dst, src,
//		converter.WithLayerConvertFunc(containerd.EROFSLayerConvertFunc(opts)),
//		converter.WithUpdateManifest(containerd.EROFSUpdateManifest(opts)))
//
// The layers are the bytes `rafs convert` (image.Converter) makes with the
// same options, and with the hook (Nydus) or the manifest update (EROFS)
// the config and manifest are too, so the converted image has the digest
// `rafs convert` gives it.
//
// It is a Go module of its own, github.com/rafs-dev/rafs/convert/containerd,
// so that containerd's and nydus-snapshotter's dependencies stay out of
// the rafs module.
package containerd
