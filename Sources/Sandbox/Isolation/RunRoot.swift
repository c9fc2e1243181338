import CShims
import Glibc
import SandboxSupport

/// What a sandbox's root is built from, and where the child anchors it. The
/// child builds the root in a staging tmpfs mounted on `anchor`, in its own
/// mount namespace (dgrid_spawn.h, "the root"): an image is an overlay of its
/// shared layers over dgrid's own mount-point layer, with any writes in that
/// tmpfs, so no layer is ever written after it was unpacked, a writable root
/// is bounded, and nothing of a run reaches the host's disk.
///
/// The anchor is one empty directory, `$DGRID_HOME/run/anchor`, shared by every
/// run: each child mounts on it in its own mount namespace, so the host's
/// directory never changes and a run costs no directory of its own. Only
/// where overlay is refused does `copy()` make a per-run directory,
/// `run/<sandbox id>/copy` (docs/ARCHITECTURE.md §5: fall back only then, and say so).
struct RunRoot {
    /// The directory the child mounts its staging tmpfs on.
    let anchor: String
    /// The trees the root is built from, lowest first: an image's layers, or
    /// one rootfs directory.
    let lowers: [String]
    /// True for an image (an overlay of `lowers`); false for one rootfs tree.
    let overlay: Bool
    /// Why these layers cannot be one overlay mount at all, decided before
    /// any spawn; nil when the kernel gets to try.
    let refusal: String?
    let sandboxID: String
    let state: StateDirectory
    /// The per-run directory of a copy, removed by `remove()`.
    let runDirectory: String?

    /// A plain rootfs directory (already resolved). Rootless, the child
    /// anchors its staging on the rootfs directory itself (it clones the tree
    /// first; the host's view of the directory does not change), so such a
    /// run needs no state directory; as root, on the shared anchor, because
    /// the child looks the anchor up with the worker's ids but no privilege
    /// over other users' directories.
    static func directory(_ rootfs: String, sandboxID: String, state: StateDirectory) throws(SandboxError) -> RunRoot {
        let anchor = geteuid() == 0 ? try sharedAnchor(state) : rootfs
        return RunRoot(anchor: anchor, lowers: [rootfs], overlay: false, refusal: nil,
                       sandboxID: sandboxID, state: state, runDirectory: nil)
    }

    /// An image's layer directories, lowest first.
    static func layers(_ stored: [StoredLayer], sandboxID: String, state: StateDirectory) throws(SandboxError) -> RunRoot {
        for layer in stored {
            var st = stat()
            guard lstat(layer.directory, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
                throw .rootfs(path: layer.directory, reason: "image layer \(layer.diffID) is missing; re-import the image")
            }
        }
        let layers = stored.map(\.directory)
        // Each lower costs one descriptor sent with the go byte and ~22 bytes
        // of the overlay's one page of options.
        let refusal = layers.count > Int(DGRID_MAX_LOWERS)
            ? "it has \(layers.count) layers, over the \(DGRID_MAX_LOWERS) one overlay mount takes" : nil
        return RunRoot(anchor: try sharedAnchor(state), lowers: layers, overlay: true, refusal: refusal,
                       sandboxID: sandboxID, state: state, runDirectory: nil)
    }

    /// `$DGRID_HOME/run/anchor`, created once (0700, ours).
    private static func sharedAnchor(_ state: StateDirectory) throws(SandboxError) -> String {
        do { return try state.directory("run/anchor") } catch {
            throw .rootfs(path: state.path + "/run/anchor", reason: error.description)
        }
    }

    /// Merges the layers into `copy/` in the run directory, for a rootfs
    /// where overlay was refused; returns the root to run from instead.
    /// Costs a full copy of the image, which is why it is only the fallback.
    func copy() throws(SandboxError) -> RunRoot {
        let run: String
        do { run = try state.directory("run/\(sandboxID)") } catch {
            throw .rootfs(path: state.path + "/run", reason: error.description)
        }
        let copied = RunRoot(anchor: anchor, lowers: [run + "/copy"], overlay: false, refusal: nil,
                             sandboxID: sandboxID, state: state, runDirectory: run)
        guard mkdir(run + "/copy", 0o755) == 0 else {
            let err = errno
            copied.remove()
            throw .rootfs(path: run + "/copy", reason: errnoText(err))
        }
        do {
            try LayerCopy.merge(layers: lowers, into: run + "/copy")
        } catch {
            copied.remove()
            throw .rootfs(path: run + "/copy", reason: "copying the image's layers (overlay was refused): \(error)")
        }
        return copied
    }

    /// Removes a copy's run directory. Byte-exact names and no symlink followed
    /// (a copy's `x -> /etc` must not take the host's /etc).
    func remove() {
        guard let runDirectory, let slash = runDirectory.lastIndex(of: "/") else { return }
        let parent = open(String(runDirectory[..<slash]), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else { return }
        defer { close(parent) }
        _ = removeTree(in: parent, name: String(runDirectory[runDirectory.index(after: slash)...]))
    }
}
