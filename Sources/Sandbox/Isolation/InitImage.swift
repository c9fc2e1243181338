import CShims
import Glibc
import Synchronization
import SandboxSupport

/// dgrid-init, the program every sandbox's pid 1 becomes once setup is done,
/// as a sealed, execute-only memfd (docs/THREATS.md, T1). Loaded once per
/// process from beside the running executable, so neither PATH nor the
/// environment can substitute another program, and nothing the sandbox does
/// can write the copy it runs.
public struct InitImage: Sendable {
    public static let fileName = "dgrid-init"

    /// An O_PATH descriptor of the memfd, kept open for the process's life.
    let descriptor: Int32

    private static let loaded = Mutex<Result<InitImage, SandboxError>?>(nil)

    /// The image beside this executable, loaded on first use.
    static func shared() throws(SandboxError) -> InitImage {
        let result = loaded.withLock { cached in
            if let cached { return cached }
            let result = Result<InitImage, SandboxError> { () throws(SandboxError) in
                try load(path: siblingPath(fileName))
            }
            cached = result
            return result
        }
        return try result.get()
    }

    static func load(path: String) throws(SandboxError) -> InitImage {
        let source = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard source >= 0 else { throw .initProgram(path: path, errno: errno) }
        defer { close(source) }
        let fd = dgrid_sealed_exec_copy(source, fileName)
        guard fd >= 0 else { throw .initProgram(path: path, errno: -fd) }
        return InitImage(descriptor: fd)
    }

    /// `fileName` in the directory of this executable (/proc/self/exe).
    static func siblingPath(_ fileName: String) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return fileName }
        let exe = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = exe.lastIndex(of: "/") else { return fileName }
        return String(exe[...slash]) + fileName
    }

    /// dgrid-init's argv: its name, the number of exec candidates, the
    /// candidates, then the task's argv (the hand-over in dgrid_spawn.h).
    static func arguments(candidates: [String], argv: [String]) -> [String] {
        [fileName, "\(candidates.count)"] + candidates + argv
    }
}
