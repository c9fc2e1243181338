import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

@Suite(.unit) struct ValueParsingTests {
    @Test(arguments: [("512", 512), ("64k", 65536), ("256m", 268_435_456), ("1g", 1_073_741_824),
                      ("1.5g", 1_610_612_736), ("256MiB", 268_435_456), ("10KB", 10240), ("7b", 7)])
    func byteCountsParse(text: String, bytes: UInt64) throws {
        #expect(try ByteCount(parsing: text).bytes == bytes)
    }

    @Test(arguments: ["lots", "", "-1m", "12q", "m", "1e400", "0x10"])
    func badByteCountsAreRefusedWithTheText(text: String) {
        #expect(throws: ValueError.self) { try ByteCount(parsing: text) }
        do {
            _ = try ByteCount(parsing: text)
        } catch {
            #expect(error.description.contains("'\(text)'"))
        }
    }

    @Test func cpuQuotaConvertsToCFSQuota() throws {
        #expect(try CPUQuota(parsing: "1.5").quotaMicroseconds() == 150_000)
        #expect(try CPUQuota(parsing: "0.25").quotaMicroseconds(period: 100_000) == 25_000)
        #expect(throws: ValueError.self) { try CPUQuota(parsing: "0") }
        #expect(throws: ValueError.self) { try CPUQuota(parsing: "many") }
    }

    @Test func usersAreNumericOnly() throws {
        #expect(try UserID(parsing: "1000:1000") == UserID(uid: 1000, gid: 1000))
        #expect(try UserID(parsing: "0") == UserID(uid: 0, gid: 0))
        #expect(throws: ValueError.self) { try UserID(parsing: "root") }
        #expect(throws: ValueError.self) { try UserID(parsing: "1000:staff") }
        #expect(throws: ValueError.self) { try UserID(parsing: "1:2:3") }
    }

    @Test func executableCandidatesFollowTheSandboxPath() {
        #expect(SandboxDefaults.executableCandidates(command: "/bin/sh", environment: []) == ["/bin/sh"])
        #expect(SandboxDefaults.executableCandidates(command: "sh", environment: ["PATH=/a:/b/"]) == ["/a/sh", "/b/sh"])
    }
}
