import Glibc
import Sandbox
import Trust

/// `trust.*`: the host's trust files (docs/ARCHITECTURE.md §9) read as a worker
/// reads them at start — one check per file, so every problem shows at once
/// where the worker stops at the first (exit 78). Each must be a regular file
/// owned by this user or root and writable by nobody else: whoever can write
/// one decides what runs here, so group- or world-writable is a failure.
/// `trust.pins` holds the files a worker writes itself and trusts on the way
/// back in: the grid-id and policy-serial pins (`$DGRID_HOME/grids/`) and the
/// audit log.
public enum TrustFilesCheck {
    public static func check(state: StateDirectory) -> [HostCheck] {
        let directory: String
        do {
            guard let found = try state.existingDirectory(TrustStore.directoryName) else {
                let path = state.path + "/" + TrustStore.directoryName
                return [
                    .pass(.trustDirectory, "\(path) does not exist: no host policy, nobody trusted"),
                    .warn(.trustAllowedSigners, "no \(path)/\(TrustStore.allowedSignersName): no signer is trusted, so a worker rejects every task",
                          fix: "list the submitters' keys in \(path)/\(TrustStore.allowedSignersName) (mode 600), or run unsigned tasks knowingly (--allow-unsigned)"),
                    .pass(.trustRevokedKeys, "none (no \(path))"),
                    .pass(.trustPolicy, "none (no \(path)): signatures required, 1 signer"),
                    .pass(.trustOpenPGPKeyring, "none (no \(path)): OpenPGP signatures are not trusted"),
                    pins(state: state),
                ]
            }
            directory = found
        } catch {
            let dead = "not read: \(state.path)/\(TrustStore.directoryName) is refused"
            return [.fail(.trustDirectory, error.description, fix: StateDirectoryCheck.fix(error)),
                    .fail(.trustAllowedSigners, dead, fix: "fix trust.directory first"),
                    .fail(.trustRevokedKeys, dead, fix: "fix trust.directory first"),
                    .fail(.trustPolicy, dead, fix: "fix trust.directory first"),
                    .fail(.trustOpenPGPKeyring, dead, fix: "fix trust.directory first"),
                    pins(state: state)]
        }
        let policyPath = directory + "/" + TrustPolicy.fileName
        let policy = read(policyPath, .trustPolicy) { text throws(TrustFileError) in try TrustPolicy.parse(text, source: policyPath) }
        let signersPath = directory + "/" + TrustStore.allowedSignersName
        let signers = read(signersPath, .trustAllowedSigners) { text throws(TrustFileError) in try AllowedSigners.parse(text, source: signersPath) }
        let revokedPath = directory + "/" + TrustStore.revokedKeysName
        let revoked = read(revokedPath, .trustRevokedKeys) { text throws(TrustFileError) in try RevokedKeys.parse(text, source: revokedPath) }

        var checks: [HostCheck] = [.pass(.trustDirectory, "\(directory) is this user's and closed to others")]
        let required = policy.value?.requireSignatures ?? true
        switch signers {
        case .refused(let check): checks.append(check)
        case .absent, .parsed:
            let parsed = signers.value
            let count = parsed?.entries.count ?? 0
            if count == 0 && required {
                checks.append(.warn(.trustAllowedSigners, "\(parsed == nil ? "no" : "an empty") \(signersPath): no signer is trusted, so a worker rejects every task",
                                    fix: "list the submitters' keys in \(signersPath) (mode 600), or run unsigned tasks knowingly (--allow-unsigned)"))
            } else {
                checks.append(.pass(.trustAllowedSigners, "\(signersPath): \(count) trusted key\(count == 1 ? "" : "s")"))
            }
        }
        switch revoked {
        case .refused(let check): checks.append(check)
        case .absent, .parsed:
            let parsed = revoked.value
            checks.append(.pass(.trustRevokedKeys, parsed.map { "\(revokedPath): \($0.count) revoked key\($0.count == 1 ? "" : "s")" } ?? "none (\(revokedPath) absent)"))
        }
        switch policy {
        case .refused(let check): checks.append(check)
        case .absent, .parsed:
            let parsed = policy.value
            let value = parsed ?? TrustPolicy()
            let words = value.requireSignatures ? "signatures required, at least \(value.minSigners) signer\(value.minSigners == 1 ? "" : "s")"
                : "require_signatures = false: unsigned tasks run"
            checks.append(.pass(.trustPolicy, (parsed == nil ? "none (\(policyPath) absent): " : "\(policyPath): ") + words))
        }
        checks.append(keyring(directory + "/" + OpenPGPKeyring.fileName))
        checks.append(pins(state: state))
        return checks
    }

    /// A trust file as read: absent, parsed, or refused with the check that says why.
    enum Read<T> {
        case absent
        case parsed(T)
        case refused(HostCheck)

        var value: T? { if case .parsed(let value) = self { value } else { nil } }
    }

    private static func read<T>(_ path: String, _ id: HostCheckID, _ parse: (String) throws(TrustFileError) -> T) -> Read<T> {
        do {
            guard let text = try TrustStore.readText(path) else { return .absent }
            return .parsed(try parse(text))
        } catch {
            return .refused(.fail(id, error.description, fix: fix(error)))
        }
    }

    private static func keyring(_ path: String) -> HostCheck {
        do {
            guard let bytes = try TrustStore.readBytes(path) else {
                return .pass(.trustOpenPGPKeyring, "none (\(path) absent): OpenPGP signatures are not trusted")
            }
            guard access(OpenPGPVerifier.gpgv, X_OK) == 0 else {
                return .warn(.trustOpenPGPKeyring, "\(path) holds \(bytes.count) bytes of keys, but \(OpenPGPVerifier.gpgv) is missing: tasks signed with OpenPGP are refused",
                             fix: "apt-get install gpgv")
            }
            return .pass(.trustOpenPGPKeyring, "\(path): \(bytes.count) bytes of keys, checked with \(OpenPGPVerifier.gpgv)")
        } catch {
            return .fail(.trustOpenPGPKeyring, error.description, fix: fix(error))
        }
    }

    static func fix(_ error: TrustFileError) -> String {
        switch error.problem {
        case .permissions: "chown $(id -un) \(error.file) && chmod 600 \(error.file), after checking nobody changed it"
        case .syntax: "correct \(error.file)\(error.line.map { " line \($0)" } ?? "") (docs/ARCHITECTURE.md §9 has the format)"
        case .unreadable: "make \(error.file) a readable regular file, or remove it"
        }
    }

    /// The worker's own pins and the audit log: this user's private files, or refused.
    static func pins(state: StateDirectory) -> HostCheck {
        var files: [String] = []
        if let grids = try? state.existingDirectory("grids"), let names = FileIO.list(grids) {
            files += names.filter { $0.hasSuffix(".grid-id") || $0.hasSuffix(".policy-serial") }.sorted().map { grids + "/" + $0 }
        }
        let audit = state.path + "/" + AuditLog.fileName
        var info = stat()
        if lstat(audit, &info) == 0 { files.append(audit) }
        for path in files {
            guard lstat(path, &info) == 0 else { continue }
            let mode = String(info.st_mode & 0o7777, radix: 8)
            if info.st_mode & S_IFMT != S_IFREG {
                return .fail(.trustPins, "\(path) is not a regular file", fix: "move \(path) away; the worker writes it again")
            }
            if info.st_uid != geteuid() {
                return .fail(.trustPins, "\(path) belongs to uid \(info.st_uid), not to this user", fix: "chown $(id -un) \(path), after checking its contents")
            }
            // A pin anyone can rewrite re-pins the grid or rolls its policy back; the audit log must be private.
            let allowed: mode_t = path == audit ? 0o077 : 0o022
            if info.st_mode & allowed != 0 {
                return .fail(.trustPins, "\(path) has mode \(mode): others can \(path == audit ? "read or write" : "write") it",
                             fix: "chmod \(path == audit ? "600" : "go-w") \(path), after checking its contents")
            }
        }
        return .pass(.trustPins, files.isEmpty ? "no grid pins or audit log yet" : "\(files.count) pin and log file\(files.count == 1 ? "" : "s"), all this user's and closed to others")
    }
}
