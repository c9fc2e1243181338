#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import SandboxSupport

extension SeccompProfile {
    /// Profiles are a few tens of KiB; the cap stops a mistaken path such as
    /// /dev/zero from being read forever.
    static let maximumFileSize = 4 << 20

    /// Parses a profile from JSON. `path` only improves error messages.
    public static func parse(_ data: Data, path: String? = nil) throws(SeccompError) -> SeccompProfile {
        do {
            return try JSONDecoder().decode(SeccompProfile.self, from: data)
        } catch let error as SeccompError {
            throw error.located(in: path)
        } catch let error as DecodingError {
            throw .invalidJSON(path: path, reason: describe(error))
        } catch {
            throw .invalidJSON(path: path, reason: "\(error)")
        }
    }

    /// Reads and parses the profile at `path`.
    public static func load(path: String) throws(SeccompError) -> SeccompProfile {
        try parse(Data(readProfileFile(path: path)), path: path)
    }

    /// The raw bytes of a profile file; also the compile cache's key.
    static func readProfileFile(path: String) throws(SeccompError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadableProfile(path: path, errno: errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                throw .unreadableProfile(path: path, errno: code)
            }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<count])
            if bytes.count > maximumFileSize {
                throw .invalidJSON(path: path, reason: "file is larger than \(maximumFileSize >> 20) MiB; is this a seccomp profile?")
            }
        }
    }

    /// One line instead of DecodingError's debug dump: what was wrong, and where.
    static func describe(_ error: DecodingError) -> String {
        func render(_ path: [any CodingKey]) -> String {
            var text = ""
            for key in path {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += (text.isEmpty ? "" : ".") + key.stringValue
                }
            }
            return text.isEmpty ? "top level" : text
        }
        switch error {
        case .dataCorrupted(let context):
            let underlying = context.underlyingError.map { ": \($0)" } ?? ""
            return "\(context.debugDescription) at \(render(context.codingPath))\(underlying)"
        case .keyNotFound(let key, let context):
            return "missing key \"\(key.stringValue)\" at \(render(context.codingPath))"
        case .typeMismatch(let type, let context):
            return "expected \(type) at \(render(context.codingPath)): \(context.debugDescription)"
        case .valueNotFound(let type, let context):
            return "expected \(type) but found null at \(render(context.codingPath))"
        @unknown default:
            return "\(error)"
        }
    }
}
