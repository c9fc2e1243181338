import Foundation
import Sandbox
import Testing
@testable import Runner
import TestSupport

/// What the grid is told about a task that could not start: the case, the
/// stage and the errno, never a host path; the log gets the whole error.
@Suite(.unit) struct SetupFailureReportTests {
    static let hostPath = "/var/lib/dgrid-host-secret/run/0123abcd"

    /// Every case that carries a path, free text or host ids, with a host path in it where it can hold one.
    static let sandboxErrors: [SandboxError] = [
        .invalidSpec("layer \(hostPath) is not in the store"),
        .rootfs(path: hostPath, reason: "cannot create \(hostPath)/rootfs: Not a directory"),
        .userNamespace(path: hostPath + "/uid_map", errno: EPERM),
        .idMapHelper(helper: hostPath + "/newuidmap", status: 256),
        .cgroup(.write(path: hostPath + "/memory.max", value: "1", errno: EBUSY)),
        .cgroup(.create(path: hostPath, errno: EACCES)),
        .cgroup(.remove(path: hostPath, errno: EBUSY)),
        .cgroup(.unavailable(reason: "\(hostPath) is read-only")),
        .cgroup(.noInternalProcesses(group: hostPath)),
        .cgroupsRequired(reason: "no writable cgroup under \(hostPath)"),
        .seccomp("cannot read \(hostPath)/filter"),
        .initProgram(path: hostPath + "/dgrid-init", errno: ENOENT),
        .idRange(path: hostPath + "/id-ranges", errno: EACCES),
        .idRangesExhausted(count: 64),
        .supplementaryGroups([27, 1001]),
    ]

    @Test(arguments: sandboxErrors)
    func aSandboxErrorIsPublishedWithoutItsPaths(error: SandboxError) {
        let report = SetupFailureReport(error)
        #expect(!report.published.contains("dgrid-host-secret"), "\(report.published)")
        #expect(report.published.hasPrefix("sandbox setup failed: "))
        #expect(report.published.hasSuffix(SetupFailureReport.seeLog))
        #expect(report.detail.contains(error.description), "\(report.detail)")
        #expect(!report.published.contains("1001"), "no host group ids: \(report.published)")
    }

    @Test func theStageAndTheErrnoArePublished() {
        let rootfs = SetupFailureReport(.rootfs(path: Self.hostPath, reason: "x"))
        #expect(rootfs.published == "sandbox setup failed: preparing the rootfs (rootfs); the worker's log has the details")
        let cgroup = SetupFailureReport(.cgroup(.create(path: Self.hostPath, errno: EACCES)))
        #expect(cgroup.published.contains("creating the task's group: errno \(EACCES) (Permission denied) (cgroup)"),
                "\(cgroup.published)")
        // Already path-free: the stage name and strerror.
        let setup = SetupFailureReport(.setup(stage: 0, errno: EROFS))
        #expect(setup.published == "sandbox setup failed: setup: Read-only file system (setup, errno \(EROFS)); "
                + SetupFailureReport.seeLog, "\(setup.published)")
    }

    @Test func imageStoreErrorsKeepTheirPathsInTheLog() throws {
        let digest = try Digest(parsing: "sha256:" + String(repeating: "a", count: 64))
        for error in [ImageError.system(operation: "open", path: Self.hostPath, errno: ENOENT),
                      .layerNotUnpacked(diffID: digest, path: Self.hostPath),
                      .importSource(path: Self.hostPath, reason: "gone"),
                      .readFailed(digest: nil, source: Self.hostPath, message: "short read")] {
            let report = SetupFailureReport(image: "test/x:v1", error)
            #expect(!report.published.contains("dgrid-host-secret"), "\(report.published)")
            #expect(report.published.hasPrefix("image test/x:v1: "))
            #expect(report.detail.contains(Self.hostPath))
        }
        // What the task's author must fix is published whole.
        let refused = SetupFailureReport(image: "evil:latest", ImageError.notAllowlisted("evil:latest"))
        #expect(refused.published == "image evil:latest: \(ImageError.notAllowlisted("evil:latest"))")
    }
}
