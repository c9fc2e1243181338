import CSeccomp
import Foundation
import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// Parsing and compiling profiles; SeccompKernelTests proves the BPF on a real kernel.
@Suite(.unit) struct SeccompProfileTests {
    static let defaultProfilePath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("profiles/default.json").path

    static func parse(_ json: String) throws(SeccompError) -> SeccompProfile {
        try SeccompProfile.parse(Data(json.utf8))
    }

    static func bytes(_ filter: SeccompFilter) -> [UInt8] {
        filter.instructions.withUnsafeBytes { Array($0) }
    }

    @Test func defaultProfileParsesAndCompilesWithoutWarnings() throws {
        let profile = try SeccompProfile.load(path: Self.defaultProfilePath)
        #expect(profile.defaultAction == .errno)
        #expect(profile.defaultErrnoRet == 1)
        #expect(profile.architectures == ["SCMP_ARCH_X86_64"])

        let compiled = try SeccompCompiler.load(path: Self.defaultProfilePath)
        #expect(compiled.warnings == [])
        #expect(compiled.filter.instructions.count > 100)
        #expect(compiled.filter.instructions.count <= SeccompExport.maximumInstructions)
        // Strict mode accepts it too: every name is known to this libseccomp.
        _ = try SeccompCompiler.compile(profile, strict: true)
    }

    @Test func defaultProfileDeniesTheHostAttackSurface() throws {
        let profile = try SeccompProfile.load(path: Self.defaultProfilePath)
        let allowed = Set(profile.syscalls.filter { $0.action == .allow && $0.args.isEmpty }.flatMap(\.names))
        let denied = ["mount", "umount2", "pivot_root", "chroot", "setns", "unshare", "ptrace", "bpf",
                      "perf_event_open", "userfaultfd", "keyctl", "io_uring_setup", "kexec_load",
                      "init_module", "open_by_handle_at", "clock_settime", "iopl", "process_vm_readv",
                      "socket", "socketpair", "clone", "clone3", "personality", "modify_ldt", "memfd_secret"]
        #expect(allowed.intersection(denied).isEmpty)
    }

    /// socket and socketpair are allowed only for AF_UNIX, AF_INET, AF_INET6 and
    /// AF_NETLINK: every rule that allows them pins the family with EQ on arg 0.
    @Test func socketFamiliesAreAnAllowlist() throws {
        let profile = try SeccompProfile.load(path: Self.defaultProfilePath)
        let rules = profile.syscalls.filter { $0.action == .allow && !Set($0.names).isDisjoint(with: ["socket", "socketpair"]) }
        #expect(!rules.isEmpty)
        var families: Set<UInt64> = []
        for rule in rules {
            let family = rule.args.filter { $0.index == 0 }
            #expect(family.count == 1 && family[0].op == .equal, "\(rule.names) \(rule.args)")
            families.formUnion(family.map(\.value))
        }
        #expect(families == [1, 2, 10, 16])
    }

    /// The profile compiled into the binary is profiles/default.json itself
    /// (Sources/Sandbox/Resources/default-seccomp.json links to it): one source of truth.
    @Test func theEmbeddedProfileIsTheOneInProfiles() throws {
        let file = try Data(contentsOf: URL(fileURLWithPath: Self.defaultProfilePath))
        #expect(Array(file) == DefaultSeccomp.embeddedProfile)
    }

    @Test func loadDefaultFindsTheProfileInADirectory() throws {
        let directory = URL(fileURLWithPath: Self.defaultProfilePath).deletingLastPathComponent().path
        let viaDirectory = try SeccompCompiler.loadDefault(profilesDirectory: directory + "/")
        let viaPath = try SeccompCompiler.load(path: Self.defaultProfilePath)
        #expect(Self.bytes(viaDirectory.filter) == Self.bytes(viaPath.filter))
    }

    @Test func errnoRetIsParsedAndDefaultsToEPERM() throws {
        let profile = try Self.parse("""
            {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13, "syscalls": [
              {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
              {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
              {"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}
            """)
        #expect(profile.defaultErrnoRet == 13)
        #expect(profile.syscalls[0].errnoRet == 38)
        #expect(profile.syscalls[1].errnoRet == nil)
        #expect(SeccompLibrary.value(of: .errno, errnoRet: 38) == 0x0005_0026)
        #expect(SeccompLibrary.value(of: .errno, errnoRet: nil) == 0x0005_0001)
        #expect(SeccompLibrary.value(of: .allow, errnoRet: nil) == SCMP_ACT_ALLOW)
        _ = try SeccompCompiler.compile(profile)
    }

    @Test func errnoRetOnANonErrnoActionIsRejected() {
        #expect(throws: SeccompError.invalidRule(
            rule: "syscalls[0] (read)",
            reason: "errnoRet is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_ALLOW")) {
            try Self.parse(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}"#)
        }
    }

    @Test func unknownOperatorNamesTheRule() {
        let json = """
            {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
              {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
              {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_ROUGHLY"}]}]}
            """
        #expect(throws: SeccompError.unknownOperator(name: "SCMP_CMP_ROUGHLY", rule: "syscalls[1] (socket)")) {
            try Self.parse(json)
        }
        let error = SeccompError.unknownOperator(name: "SCMP_CMP_ROUGHLY", rule: "syscalls[1] (socket)")
        #expect(error.description.contains("SCMP_CMP_MASKED_EQ"))
    }

    @Test func unknownActionNamesTheRule() {
        #expect(throws: SeccompError.unknownAction(name: "SCMP_ACT_MAYBE", rule: "syscalls[0] (read, write)")) {
            try Self.parse(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_MAYBE"}]}"#)
        }
        #expect(throws: SeccompError.unknownAction(name: "SCMP_ACT_NOTIFY", rule: "defaultAction")) {
            try Self.parse(#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#)
        }
    }

    @Test func errorsFromAFileNameTheFile() throws {
        let directory = try SeccompTemporaryDirectory()
        let broken = try directory.write("broken.json", #"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [ "#)
        do {
            _ = try SeccompCompiler.load(path: broken)
            Issue.record("expected invalid JSON to fail")
        } catch {
            guard case .invalidJSON(let path, let reason) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(path == broken)
            #expect(!reason.isEmpty)
            #expect(error.description.contains(broken))
        }

        let badRule = try directory.write("rule.json", #"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOPE"}]}"#)
        #expect(throws: SeccompError.unknownAction(name: "SCMP_ACT_NOPE", rule: "syscalls[0] (read) in \(badRule)")) {
            try SeccompProfile.load(path: badRule)
        }

        let missing = directory.path + "/missing.json"
        #expect(throws: SeccompError.unreadableProfile(path: missing, errno: ENOENT)) {
            try SeccompCompiler.load(path: missing)
        }
    }

    @Test func wrongShapeSaysWhere() {
        do {
            _ = try Self.parse(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": "zero", "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#)
            Issue.record("expected a type mismatch")
        } catch {
            guard case .invalidJSON(nil, let reason) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(reason.contains("syscalls[0].args[0].index"))
        }
    }

    @Test func unknownSyscallIsAWarningOrAStrictError() throws {
        let profile = try Self.parse("""
            {"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"architecture": "SCMP_ARCH_X86_64"}],
             "syscalls": [{"names": ["read", "not_a_syscall"], "action": "SCMP_ACT_ALLOW"}]}
            """)
        let lenient = try SeccompCompiler.compile(profile)
        #expect(lenient.warnings.count == 1)
        #expect(lenient.warnings.first?.contains("\"not_a_syscall\"") == true)
        #expect(!lenient.filter.instructions.isEmpty)

        #expect(throws: SeccompError.unknownSyscall(name: "not_a_syscall", rule: "syscalls[0] (read, not_a_syscall)")) {
            try SeccompCompiler.compile(profile, strict: true)
        }
    }

    @Test func maskedEqualPutsTheMaskInDatumA() throws {
        let profile = try Self.parse("""
            {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
              "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]}
            """)
        let argument = try #require(profile.syscalls.first?.args.first)
        #expect(argument == SeccompArgument(index: 0, value: 0x7E02_0000, valueTwo: 0, op: .maskedEqual))
        let comparison = SeccompLibrary.comparison(argument)
        #expect(comparison.arg == 0)
        #expect(comparison.op == SCMP_CMP_MASKED_EQ)
        #expect(comparison.datum_a == 0x7E02_0000)
        #expect(comparison.datum_b == 0)
        // A missing valueTwo is 0, as in Docker's own profile.
        let docker = try Self.parse(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#)
        #expect(docker == profile)
    }

    @Test func ruleNeedingACapabilityIsSkipped() throws {
        let withCapRule = try Self.parse("""
            {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
              {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
              {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
              {"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}}]}
            """)
        var without = withCapRule
        without.syscalls.remove(at: 1)
        let host = SeccompHost(architectureNames: ["amd64"], kernel: KernelVersion(major: 6, minor: 1))
        #expect(!host.applies(withCapRule.syscalls[1]))
        #expect(host.applies(withCapRule.syscalls[2]))
        let a = try SeccompCompiler.compile(withCapRule, strict: false, host: host)
        let b = try SeccompCompiler.compile(without, strict: false, host: host)
        #expect(Self.bytes(a.filter) == Self.bytes(b.filter))
    }

    @Test func archesAndKernelVersionsFollowDocker() throws {
        let host = SeccompHost(architectureNames: ["amd64", "x86_64"], kernel: KernelVersion("5.10.0-21-amd64"))
        func rule(_ includes: SeccompRuleFilter = .init(), _ excludes: SeccompRuleFilter = .init()) -> SeccompRule {
            SeccompRule(names: ["read"], action: .allow, includes: includes, excludes: excludes)
        }
        #expect(host.applies(rule(.init(arches: ["amd64", "x32"]))))
        #expect(!host.applies(rule(.init(arches: ["arm64"]))))
        #expect(!host.applies(rule(.init(), .init(arches: ["amd64"]))))
        #expect(host.applies(rule(.init(), .init(arches: ["s390x"]))))
        #expect(host.applies(rule(.init(minKernel: KernelVersion("4.8")))))
        #expect(!host.applies(rule(.init(minKernel: KernelVersion("5.11")))))
        #expect(!host.applies(rule(.init(), .init(minKernel: KernelVersion("5.10")))))
        #expect(KernelVersion("6.18.44-fc-v782") == KernelVersion(major: 6, minor: 18, patch: 44))
        #expect(KernelVersion("six") == nil)
        #expect(throws: SeccompError.invalidRule(rule: "syscalls[0] (read)", reason: #"includes.minKernel "4.x" is not a version like "4.8""#)) {
            try Self.parse(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.x"}}]}"#)
        }
    }

    @Test func architecturesAreValidated() throws {
        let foreign = try Self.parse(#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#)
        let native = try Self.parse(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#)
        // Listing x86 adds its entry point, so the program grows.
        let withX86 = try SeccompCompiler.compile(foreign).filter.instructions.count
        #expect(withX86 > (try SeccompCompiler.compile(native).filter.instructions.count))

        let bogus = try Self.parse(#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_VAX"]}"#)
        #expect(throws: SeccompError.unknownArchitecture(name: "SCMP_ARCH_VAX")) {
            try SeccompCompiler.compile(bogus)
        }
    }

    @Test func ruleRepeatingTheDefaultActionIsSkipped() throws {
        let profile = try Self.parse("""
            {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
              {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
              {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
            """)
        let compiled = try SeccompCompiler.compile(profile)
        #expect(compiled.warnings == [])
    }

    @Test func cacheCompilesEachProfileOnce() throws {
        let cache = SeccompCache()
        let bytes = Array(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#.utf8)
        let first = try cache.compiled(bytes: bytes, path: nil, strict: false)
        let second = try cache.compiled(bytes: bytes, path: nil, strict: false)
        #expect(cache.count == 1)
        #expect(Self.bytes(first.filter) == Self.bytes(second.filter))
        _ = try cache.compiled(bytes: bytes + Array(" ".utf8), path: nil, strict: false)
        #expect(cache.count == 2)
    }
}

/// A directory under the system temp dir, removed when the value is dropped.
final class SeccompTemporaryDirectory {
    let path: String

    init() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("dgrid-seccomp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        path = url.path
    }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let file = path + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        return file
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}
