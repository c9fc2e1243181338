/// Removes credentials from text headed for errors and logs. libgit2's messages can
/// echo URLs, and a misconfigured remote may carry a token, so every LedgerError
/// string passes through here (docs/THREATS.md "Secrets": never in logs or results).
enum Redaction {
    static let mask = "***"

    static func redact(_ text: String, secrets: [String] = []) -> String {
        var result = text
        // Known secrets first, exactly: the cheapest certain case.
        for secret in secrets where secret.count >= 4 {
            result = result.replacing(secret, with: mask)
        }
        // Each pattern only where its anchor occurs: Swift compiles a regex
        // literal at run time on first use, and in the common case (a plain
        // remote URL at ledger start) that parser would be most of what an idle
        // worker keeps resident, for nothing.
        // scheme://user:password@host → scheme://***@host
        if result.utf8.contains(UInt8(ascii: "@")) {
            result = result.replacing(/([A-Za-z][A-Za-z0-9+.\-]*:\/\/)[^\/@\s]+@/) { match in
                "\(match.output.1)\(mask)@"
            }
        }
        // Forge tokens by their documented prefixes, and HTTP authorization values.
        let lowered = result.lowercased()
        if ["gh", "github_pat_", "glpat-"].contains(where: { lowered.contains($0) }) {
            result = result.replacing(/(gh[pousr]_|github_pat_|glpat-)[A-Za-z0-9_\-]{8,}/, with: mask)
        }
        if ["bearer", "basic", "token"].contains(where: { lowered.contains($0) }) {
            result = result.replacing(/(?i)(bearer|basic|token|x-access-token)([\s:=]+)[A-Za-z0-9._~+\/=\-]{8,}/) { match in
                "\(match.output.1)\(match.output.2)\(mask)"
            }
        }
        return redactOpaqueWords(result)
    }

    /// Any long word mixing upper case, lower case and digits looks like a generated
    /// secret (base64, random tokens). Object ids (lowercase hex) and ordinary words
    /// are kept, so errors stay useful.
    private static func redactOpaqueWords(_ text: String) -> String {
        var output = ""
        var word = ""
        func flush() {
            output += looksOpaque(word) ? mask : word
            word = ""
        }
        for character in text {
            if character.isASCII && (character.isLetter || character.isNumber || "_-+/=".contains(character)) {
                word.append(character)
            } else {
                flush()
                output.append(character)
            }
        }
        flush()
        return output
    }

    private static func looksOpaque(_ word: String) -> Bool {
        guard word.count >= 24 else { return false }
        let lower = word.contains(where: \.isLowercase)
        let upper = word.contains(where: \.isUppercase)
        let digit = word.contains(where: \.isNumber)
        // Paths ("tasks/queue/Priority1/x") have slashes between short parts; a
        // secret is one long run.
        let longestRun = word.split(separator: "/").map(\.count).max() ?? 0
        return lower && upper && digit && longestRun >= 20
    }
}
