import Foundation
import Sandbox

/// A task that could not be started, told twice: to the grid and to the
/// worker's log. A result record is read by everyone who can read the
/// repository, and a setup error's text names host paths — `$DGRID_HOME`, the
/// run directory, the layer store, cgroup and helper paths — that map out the
/// worker for whoever submitted the task. So the record gets only what is
/// built from fixed words: the error's stable case, the setup stage and the
/// errno; the full text, paths included, goes to the local log alone.
struct SetupFailureReport: Equatable {
    /// For the result record: no host path, by construction.
    let published: String
    /// For the worker's log: the whole error.
    let detail: String

    static let seeLog = "the worker's log has the details"

    init(_ error: SandboxError) {
        let text = error.description
        detail = text.hasPrefix("sandbox setup failed") ? text : "sandbox setup failed: " + text
        published = Self.publicText(error) + "; " + Self.seeLog
    }

    init(seccomp error: SeccompError) {
        detail = "seccomp: \(error)"
        published = "sandbox setup failed: seccomp (the worker's filter could not be prepared); " + Self.seeLog
    }

    /// The image could not be resolved on this worker. The reference is the
    /// task's own text; errors that carry store paths publish only their case.
    init(image: String, _ error: Error) {
        detail = "image \(image): \(error)"
        guard let failure = error as? ImageError else {
            published = "image \(image): the image store is not usable on this worker; " + Self.seeLog
            return
        }
        switch failure {
        case .system(let operation, _, let errno):
            published = "image \(image): image store: \(operation): \(Self.errnoText(errno)); " + Self.seeLog
        case .layerNotUnpacked(let diffID, _):
            published = "image \(image): layer \(diffID) is not unpacked on this worker (layerNotUnpacked); " + Self.seeLog
        case .importSource, .readFailed, .unpack, .scan, .busy, .gcAborted, .invalidDocument:
            published = "image \(image): image store (\(Self.caseName(failure))); " + Self.seeLog
        default:
            // Built from the reference, digests and fixed words: what the task's author needs.
            published = "image \(image): \(failure)"
        }
    }

    private static func publicText(_ error: SandboxError) -> String {
        let failed = "sandbox setup failed: "
        switch error {
        case .setup(_, let errno):
            // "sandbox setup failed: <stage>: <strerror>": the stage names are fixed words.
            return error.description + " (setup, errno \(errno))"
        case .commandNotFound(_, let errno), .spawn(let errno):
            // The task's own command, strerror text and fixed words: no host path.
            return failed + error.description + " (\(caseName(error)), errno \(errno))"
        case .userNotMapped(let user, _):
            return failed + "user \(user) is outside this worker's rootless id mapping (userNotMapped)"
        case .invalidSpec:
            return failed + "invalid sandbox specification (invalidSpec)"
        case .rootfs:
            return failed + "preparing the rootfs (rootfs)"
        case .userNamespace(_, let errno):
            return failed + "writing the user namespace's id map (userNamespace): \(errnoText(errno))"
        case .idMapHelper(_, let status):
            return failed + "the id-map helper failed with wait status \(status) (idMapHelper)"
        case .cgroup(let cgroup):
            return failed + "cgroup: " + publicText(cgroup) + " (cgroup)"
        case .cgroupsRequired:
            return failed + "resource limits need cgroups, which this worker cannot use (cgroupsRequired)"
        case .seccomp:
            return failed + "installing the seccomp filter (seccomp)"
        case .volume:
            return failed + "giving the task its /inputs, /output or /checkpoint (volume)"
        case .egress:
            return failed + "this worker cannot set up the task's egress network (egress): it needs root, iproute2 and nftables"
        case .initProgram(_, let errno):
            return failed + "loading the sandbox init (initProgram): \(errnoText(errno))"
        case .idRange(_, let errno):
            return failed + "leasing a host id range (idRange): \(errnoText(errno))"
        case .idRangesExhausted:
            return failed + "every host id range of this worker is in use (idRangesExhausted)"
        case .supplementaryGroups:
            return failed + "the worker's one-id mapping would keep its supplementary groups (supplementaryGroups)"
        }
    }

    private static func publicText(_ error: CgroupError) -> String {
        switch error {
        case .unavailable: "unavailable on this worker"
        case .missingController(let name): "controller '\(name)' is not available on this worker"
        case .write(_, _, let errno): "writing a limit: \(errnoText(errno))"
        case .create(_, let errno): "creating the task's group: \(errnoText(errno))"
        case .remove(_, let errno): "removing the task's group: \(errnoText(errno))"
        case .noInternalProcesses: "the worker's group cannot delegate controllers (no internal processes rule)"
        case .invalidName: "invalid group name"
        }
    }

    /// "errno 30 (Read-only file system)": the number and the C library's words.
    static func errnoText(_ code: Int32) -> String {
        "errno \(code) (\(String(cString: strerror(code))))"
    }

    /// The enum case's name, for errors whose payload is not published.
    static func caseName(_ error: Any) -> String {
        Mirror(reflecting: error).children.first?.label ?? "\(type(of: error))"
    }
}
