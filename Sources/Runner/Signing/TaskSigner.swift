import Foundation
import Sandbox
import Trust

/// Signs task files for `dgrid sign` and `dgrid submit --sign`: OpenSSH's own
/// `ssh-keygen -Y sign -n dgrid-task` over the exact bytes, so a key file
/// with a passphrase, a key held by `ssh-agent` (give its `.pub`) and a
/// hardware key (`sk-…`) all sign the way their owner already uses them; only
/// verification is on the workers' hot path, and that is in-process. The
/// signature is appended to what `<file>.sig` already holds, so several people
/// sign one task by each running `dgrid sign` (min_signers).
public struct TaskSigner: Sendable {
    public let keyPath: String
    public let keygen: String

    public init(keyPath: String, keygen: String = "/usr/bin/ssh-keygen") {
        self.keyPath = keyPath
        self.keygen = keygen
    }

    /// The default key: `$DGRID_SIGNING_KEY`, else `~/.ssh/id_ed25519`.
    public static func defaultKey(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let key = environment["DGRID_SIGNING_KEY"], !key.isEmpty { return key }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.ssh/id_ed25519"
    }

    /// One armored signature over `bytes`.
    public func signature(over bytes: [UInt8]) throws(GridError) -> [UInt8] {
        guard FileManager.default.fileExists(atPath: keyPath) else {
            throw .local("signing key \(keyPath) does not exist: give --key PATH (a private key, or the .pub of a key in ssh-agent), or make one with `ssh-keygen -t ed25519`")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: keygen)
        // Message on stdin, signature on stdout: nothing is written beside the file.
        process.arguments = ["-Y", "sign", "-q", "-n", TaskSignatureCheck.namespace, "-f", keyPath]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        do {
            try process.run()
        } catch {
            throw .local("cannot run \(keygen): \(error); install openssh-client")
        }
        let writer = Thread {
            input.fileHandleForWriting.write(Data(bytes))
            try? input.fileHandleForWriting.close()
        }
        writer.start()
        let signature = output.fileHandleForReading.readDataToEndOfFile()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, !signature.isEmpty else {
            let text = String(decoding: message, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw .local("ssh-keygen -Y sign with \(keyPath) failed (exit \(process.terminationStatus)): \(UntrustedText.lineSafe(text))")
        }
        return Array(signature)
    }

    /// Signs `path` as it is on disk, appending to `path.sig`. Returns the signer's fingerprint.
    @discardableResult
    public func sign(file path: String) throws(GridError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw .local("\(path): cannot read") }
        let signature = try signature(over: Array(data))
        let key: SSHPublicKey
        do {
            key = try SSHSignature(armored: signature).verify(Array(data), namespace: TaskSignatureCheck.namespace)
        } catch {
            throw .local("ssh-keygen made a signature dgrid cannot verify (\(error)); sign with an ed25519, ecdsa-sha2-nistp256 or RSA (≥2048-bit) key")
        }
        let sigPath = path + TaskSignatureCheck.signatureSuffix
        let existing = FileManager.default.contents(atPath: sigPath) ?? Data()
        var combined = existing
        if !combined.isEmpty, combined.last != UInt8(ascii: "\n") { combined.append(UInt8(ascii: "\n")) }
        combined.append(Data(signature))
        do {
            try combined.write(to: URL(fileURLWithPath: sigPath), options: .atomic)
        } catch {
            throw .local("\(sigPath): cannot write: \(error)")
        }
        return key.fingerprint
    }
}
