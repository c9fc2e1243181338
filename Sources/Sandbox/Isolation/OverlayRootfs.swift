import Glibc

/// The root filesystem of an image run: a per-run directory under
/// `$DGRID_HOME/run/<sandbox id>` with the overlay's mount point (and upper and
/// work directories when writable). The overlay itself is mounted by the child
/// in its own mount namespace; only these directories need cleaning up.
///
/// Where overlay is refused, `copy()` merges the layers into `copy/` in the
/// same run directory instead (DESIGN.md §5: fall back only then, and say so).
struct OverlayRootfs {
    let runDirectory: String?
    /// Where the child mounts the overlay (or the single layer, bind-mounted).
    let mountPoint: String
    /// The layer store all layers live in; lowerdir entries are relative to it.
    let base: String?
    /// Overlay mount data; nil for a lone layer bound directly, or when `refusal` is set.
    let data: String?
    /// The image's layer directories, lowest first.
    let layers: [String]
    /// Why these layers cannot be one overlay mount at all, decided before
    /// any spawn; nil when the kernel gets to try.
    let refusal: String?

    /// The kernel takes at most one page of mount options.
    static let maximumOptionBytes = 4095

    static func prepare(layers: [String], writable: Bool, sandboxID: String, state: StateDirectory) throws(SandboxError) -> OverlayRootfs {
        let parents = Set(layers.map { parentDirectory(of: $0) })
        guard parents.count == 1, let base = parents.first else {
            throw .invalidSpec("image layers must all live in one layer store")
        }
        let names = layers.map { String($0.dropFirst(base.count + 1)) }
        // Overlay options are split on ':' and ','; layer names are digests, never these.
        guard names.allSatisfy({ !$0.isEmpty && !$0.contains(where: { ":,\\/".contains($0) }) }) else {
            throw .invalidSpec("layer directory names must not contain ':', ',', '\\' or '/'")
        }
        for layer in layers {
            var st = stat()
            guard lstat(layer, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
                throw .rootfs(path: layer, reason: "image layer is missing; re-import the image")
            }
        }
        if layers.count == 1 && !writable {
            // A lone read-only layer needs no overlay (overlay wants two lowers
            // without an upper): bind it directly, read-only like any rootfs.
            return OverlayRootfs(runDirectory: nil, mountPoint: layers[0], base: nil, data: nil,
                                 layers: layers, refusal: nil)
        }
        let run: String
        do { run = try state.directory("run/\(sandboxID)") } catch {
            throw .rootfs(path: state.path + "/run", reason: error.description)
        }
        let merged = run + "/rootfs"
        guard mkdir(merged, 0o755) == 0 else { throw .rootfs(path: merged, reason: errnoText(errno)) }

        var data = "lowerdir=" + names.reversed().joined(separator: ":")
        if writable {
            data += ",upperdir=\(run)/upper,workdir=\(run)/work"
        }
        guard data.utf8.count <= maximumOptionBytes else {
            // mount(2) keeps the first page of options and cuts the rest without
            // an error: the cut usually lands inside a layer name (ENOENT), but
            // one landing on a ':' would mount the image without its lowest
            // layers. So the kernel never sees these options; the copy runs.
            return OverlayRootfs(runDirectory: run, mountPoint: merged, base: base, data: nil, layers: layers,
                                 refusal: "its mount options are \(data.utf8.count) bytes, over the kernel's one page")
        }
        let overlay = OverlayRootfs(runDirectory: run, mountPoint: merged, base: base, data: data, layers: layers, refusal: nil)
        if writable {
            for dir in ["upper", "work"] where mkdir("\(run)/\(dir)", 0o755) != 0 {
                let err = errno
                overlay.remove()
                throw .rootfs(path: "\(run)/\(dir)", reason: errnoText(err))
            }
        }
        return overlay
    }

    /// Merges the layers into `copy/` in the run directory, for a rootfs
    /// where overlay was refused; returns its path. Costs a full copy of the
    /// image, which is why it is only the fallback.
    func copy() throws(SandboxError) -> String {
        guard let runDirectory else {
            throw .invalidSpec("a single read-only layer is never mounted as an overlay")
        }
        let copy = runDirectory + "/copy"
        guard mkdir(copy, 0o700) == 0 else { throw .rootfs(path: copy, reason: errnoText(errno)) }
        do {
            try LayerCopy.merge(layers: layers, into: copy)
        } catch {
            throw .rootfs(path: copy, reason: "copying the image's layers (overlay was refused): \(error)")
        }
        return copy
    }

    /// Removes the run directory: mount point, upper, work, copy. Byte-exact
    /// names (an image's or a task's names need not be UTF-8) and no symlink
    /// followed (a task's `upper/x -> /etc` must not take the host's /etc).
    func remove() {
        guard let runDirectory, let slash = runDirectory.lastIndex(of: "/") else { return }
        let parent = open(String(runDirectory[..<slash]), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else { return }
        defer { close(parent) }
        _ = removeTree(in: parent, name: String(runDirectory[runDirectory.index(after: slash)...]))
    }

    private static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }
}
