import CGit2
import CGitStream

/// The state libgit2's remote callbacks share with the ledger during one connection:
/// the credentials to offer, what the server said about each pushed ref, and the
/// fetch size budget. Passed to C as the callbacks' payload; the ledger keeps it
/// alive for the whole connection.
final class RemoteCallbackState {
    let credentials: GitCredentials
    let fetchByteLimit: Int
    /// For ssh remotes: the known_hosts file and the port; nil for other transports.
    let hostKeyCheck: HostKeyCheck?
    /// Why the SSH host key was refused (message, hint), when it was.
    var hostKeyRefusal: (message: String, hint: String)?
    /// How often libgit2 asked for credentials; a second ask means the first set was refused.
    var credentialRequests = 0
    var credentialsRefused = false
    var fetchTooLarge = false
    /// ref name → the server's status for it: nil means updated, a string is the reason it was not.
    var pushStatus: [String: String?] = [:]

    init(credentials: GitCredentials, fetchByteLimit: Int, hostKeyCheck: HostKeyCheck?) {
        self.credentials = credentials
        self.fetchByteLimit = fetchByteLimit
        self.hostKeyCheck = hostKeyCheck
    }

    /// libgit2's callbacks pointing at this state. Valid while `self` lives.
    func callbacks() -> git_remote_callbacks {
        var callbacks = git_remote_callbacks()
        git_remote_init_callbacks(&callbacks, UInt32(GIT_REMOTE_CALLBACKS_VERSION))
        callbacks.payload = Unmanaged.passUnretained(self).toOpaque()
        callbacks.credentials = { out, _, usernameFromURL, allowed, payload in
            guard let out, let payload else { return GIT_PASSTHROUGH.rawValue }
            let state = Unmanaged<RemoteCallbackState>.fromOpaque(payload).takeUnretainedValue()
            return state.supplyCredential(out, usernameFromURL: usernameFromURL.map { String(cString: $0) },
                                          allowed: allowed)
        }
        callbacks.certificate_check = { cert, _, host, payload in
            guard let cert, let payload else { return GIT_ECERTIFICATE.rawValue }
            let state = Unmanaged<RemoteCallbackState>.fromOpaque(payload).takeUnretainedValue()
            return state.checkCertificate(cert, host: host.map { String(cString: $0) } ?? "")
        }
        callbacks.push_update_reference = { refname, status, payload in
            guard let refname, let payload else { return 0 }
            let state = Unmanaged<RemoteCallbackState>.fromOpaque(payload).takeUnretainedValue()
            state.pushStatus[String(cString: refname)] = .some(status.map { String(cString: $0) })
            return 0
        }
        // The operation's overall deadline (GitLedger+Deadline.swift): libgit2 calls
        // these as data arrives or a pack is built, on every transport, and a
        // non-zero return aborts the operation — the hook for the local
        // transport and a second one for the others.
        callbacks.sideband_progress = { _, _, _ in dgrid_git_deadline_expired() != 0 ? -1 : 0 }
        callbacks.pack_progress = { _, _, _, _ in dgrid_git_deadline_expired() != 0 ? -1 : 0 }
        callbacks.push_transfer_progress = { _, _, _, _ in dgrid_git_deadline_expired() != 0 ? -1 : 0 }
        callbacks.transfer_progress = { stats, payload in
            if dgrid_git_deadline_expired() != 0 { return -1 }
            guard let stats, let payload else { return 0 }
            let state = Unmanaged<RemoteCallbackState>.fromOpaque(payload).takeUnretainedValue()
            // A hostile remote can serve an endless pack; stop reading at the budget.
            if stats.pointee.received_bytes > state.fetchByteLimit {
                state.fetchTooLarge = true
                return -1
            }
            return 0
        }
        return callbacks
    }

    /// libgit2's certificate_check. SSH host keys are judged by `SSHKnownHosts` alone
    /// (libgit2's `valid` flag, from its own ~/.ssh/known_hosts look-up, is ignored);
    /// TLS certificates are left to libgit2's verification (GIT_PASSTHROUGH).
    private func checkCertificate(_ cert: UnsafeMutablePointer<git_cert>, host: String) -> Int32 {
        guard cert.pointee.cert_type == GIT_CERT_HOSTKEY_LIBSSH2 else { return GIT_PASSTHROUGH.rawValue }
        guard let hostKeyCheck else {
            hostKeyRefusal = ("an SSH host key was presented on a connection that is not ssh://",
                              "use an ssh:// or user@host:path remote")
            return GIT_ECERTIFICATE.rawValue
        }
        let hostKey = UnsafeMutableRawPointer(cert).assumingMemoryBound(to: git_cert_hostkey.self).pointee
        var presented = SSHKnownHosts.PresentedKey()
        if hostKey.type.rawValue & GIT_CERT_SSH_SHA256.rawValue != 0 {
            presented.sha256 = withUnsafeBytes(of: hostKey.hash_sha256) { Array($0) }
        }
        if hostKey.type.rawValue & GIT_CERT_SSH_RAW.rawValue != 0, let raw = hostKey.hostkey, hostKey.hostkey_len > 0 {
            presented.blob = Array(UnsafeRawBufferPointer(start: raw, count: hostKey.hostkey_len))
        }
        // Host and port come from the remote as dgrid parsed it (`SSHEndpoint`),
        // the same value the credentials were chosen by; libgit2's host must agree.
        let path = hostKeyCheck.knownHosts.path
        let port = hostKeyCheck.endpoint.port
        let shown = hostKeyCheck.endpoint.shownHost
        guard host == hostKeyCheck.endpoint.host else {
            hostKeyRefusal = ("libgit2 connected to \(host), but the remote names \(shown)",
                              "write the remote as ssh://user@host:port/path")
            return GIT_ECERTIFICATE.rawValue
        }
        let host = hostKeyCheck.endpoint.host
        let fingerprint = "SHA-256 \(presented.fingerprint)"
        let add = "check the fingerprint with the server's administrator, then add its key to \(path) "
            + "(ssh-keyscan -p \(port) \(host) >> \(path)), or point \(SSHKnownHosts.environmentVariable) at a known_hosts file that lists it"
        switch hostKeyCheck.knownHosts.verify(host: host, port: port, key: presented) {
        case .trusted:
            return 0
        case .unknown:
            hostKeyRefusal = ("the SSH host \(shown) is unknown: its host key (\(fingerprint)) is not in \(path)", add)
        case .mismatch:
            hostKeyRefusal = ("the SSH host key of \(shown) (\(fingerprint)) does not match the key(s) \(path) lists for it",
                              "the server's key changed or someone is between us and it; do not connect until an administrator confirms the new key, then replace the line in \(path)")
        case .revoked:
            hostKeyRefusal = ("the SSH host key of \(shown) (\(fingerprint)) is marked @revoked in \(path)",
                              "the server must use another key")
        case .unreadable(let problem):
            hostKeyRefusal = ("cannot verify the SSH host key of \(shown): \(problem)",
                              "make \(path) a readable known_hosts file, or set \(SSHKnownHosts.environmentVariable)")
        }
        return GIT_ECERTIFICATE.rawValue
    }

    private func supplyCredential(_ out: UnsafeMutablePointer<UnsafeMutablePointer<git_credential>?>, usernameFromURL: String?,
                                  allowed: UInt32) -> Int32 {
        func allows(_ type: git_credential_t) -> Bool { allowed & type.rawValue != 0 }
        // SSH without a user in the URL first asks only for the user name.
        if allows(GIT_CREDENTIAL_USERNAME) && !allows(GIT_CREDENTIAL_SSH_KEY)
            && !allows(GIT_CREDENTIAL_USERPASS_PLAINTEXT) {
            return git_credential_username_new(out, usernameFromURL ?? "git")
        }
        credentialRequests += 1
        // libgit2 asks again after the server refused the last answer; offering the
        // same secret forever would loop, so the second ask ends the attempt.
        guard credentialRequests == 1 else {
            credentialsRefused = true
            return GIT_EAUTH.rawValue
        }
        switch credentials {
        case .none:
            return GIT_PASSTHROUGH.rawValue
        case .token(let token):
            // Never to an SSH server, whatever it offers (the ledger refuses the
            // pairing already; this keeps the promise where the secret leaves).
            guard allows(GIT_CREDENTIAL_USERPASS_PLAINTEXT), hostKeyCheck == nil else { return GIT_PASSTHROUGH.rawValue }
            return git_credential_userpass_plaintext_new(out, "x-access-token", token)
        case .sshKey(let privateKeyPath, let publicKeyPath, let passphrase):
            guard allows(GIT_CREDENTIAL_SSH_KEY) else { return GIT_PASSTHROUGH.rawValue }
            return git_credential_ssh_key_new(out, usernameFromURL ?? "git", publicKeyPath, privateKeyPath, passphrase)
        case .sshAgent:
            guard allows(GIT_CREDENTIAL_SSH_KEY) else { return GIT_PASSTHROUGH.rawValue }
            return git_credential_ssh_key_from_agent(out, usernameFromURL ?? "git")
        }
    }
}

/// What the certificate callback needs to judge an SSH server.
struct HostKeyCheck {
    let knownHosts: SSHKnownHosts
    let endpoint: SSHEndpoint
}
