import Foundation
#if canImport(Testing)
import Testing
#endif

/// Which suites a test run executes. `make test` runs the bundle twice: the
/// unit suites first, as an unprivileged user (`DGRID_TEST_SCOPE=unit`), then
/// the system suites as root (`DGRID_TEST_SCOPE=system`); unset runs both, as
/// `swift test` does on a developer's machine. Every suite names its scope
/// (TestScopeLintTests checks it), so a suite cannot drop out of both runs.
public enum TestScope: String, Sendable, CaseIterable {
    /// In-process logic: no root, no kernel features, no child processes, no
    /// servers. Runs in seconds as `nobody`.
    case unit
    /// The real kernel, real binaries and real servers; root for most.
    case system

    /// The scope this run selected, or nil for both. An unknown value stops
    /// the run: a typo must not silently skip every suite.
    public static let selected: TestScope? = {
        guard let value = ProcessInfo.processInfo.environment["DGRID_TEST_SCOPE"], !value.isEmpty else { return nil }
        guard let scope = TestScope(rawValue: value) else {
            fatalError("DGRID_TEST_SCOPE=\(value): expected one of \(TestScope.allCases.map(\.rawValue).joined(separator: ", ")), or unset for both")
        }
        return scope
    }()

    public static func includes(_ scope: TestScope) -> Bool { selected == nil || selected == scope }
}

// A plain `swift build` (make release, make demo) builds this target without
// the test libraries; the traits exist only where tests are built.
#if canImport(Testing)
extension Trait where Self == ConditionTrait {
    /// In-process logic that needs neither root nor the kernel's namespaces.
    public static var unit: Self {
        .enabled(if: TestScope.includes(.unit), "unit suite; this run selected DGRID_TEST_SCOPE=system")
    }

    /// Real kernel, binaries or servers.
    public static var system: Self {
        .enabled(if: TestScope.includes(.system), "system suite; this run selected DGRID_TEST_SCOPE=unit")
    }
}
#endif
