import CGit2

/// The state libgit2's remote callbacks share with the ledger during one connection:
/// the credentials to offer, what the server said about each pushed ref, and the
/// fetch size budget. Passed to C as the callbacks' payload; the ledger keeps it
/// alive for the whole connection.
final class RemoteCallbackState {
    let credentials: GitCredentials
    let fetchByteLimit: Int
    /// How often libgit2 asked for credentials; a second ask means the first set was refused.
    var credentialRequests = 0
    var credentialsRefused = false
    var fetchTooLarge = false
    /// ref name → the server's status for it: nil means updated, a string is the reason it was not.
    var pushStatus: [String: String?] = [:]

    init(credentials: GitCredentials, fetchByteLimit: Int) {
        self.credentials = credentials
        self.fetchByteLimit = fetchByteLimit
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
        callbacks.push_update_reference = { refname, status, payload in
            guard let refname, let payload else { return 0 }
            let state = Unmanaged<RemoteCallbackState>.fromOpaque(payload).takeUnretainedValue()
            state.pushStatus[String(cString: refname)] = .some(status.map { String(cString: $0) })
            return 0
        }
        callbacks.transfer_progress = { stats, payload in
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
            guard allows(GIT_CREDENTIAL_USERPASS_PLAINTEXT) else { return GIT_PASSTHROUGH.rawValue }
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
