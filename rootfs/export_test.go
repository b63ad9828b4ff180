package rootfs

// For the tests of package rootfs_test, which can set Lib to the image
// library (rootfs/imagelib imports rootfs).
var (
	CachedCandidates   = cachedCandidates
	ShortNameCacheFile = shortNameCacheFile
)
