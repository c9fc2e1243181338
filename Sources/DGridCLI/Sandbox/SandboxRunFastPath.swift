/// A strict parser for the canonical spelling of `dgrid sandbox run`, so the
/// start path does not pay ArgumentParser's reflection (~2.7 ms of an ~8 ms
/// start here, measured with perf; it builds every option's metadata through
/// Mirror and runtime conformance scans on each process start).
///
/// It accepts only `--name VALUE`, `--name=VALUE`, the three flags, each at
/// most once (`--env` repeats), then `--` and the command. Anything else — help, `--version`, a short flag,
/// an unknown or repeated option, an empty value or one that starts with `-`
/// — returns nil, and ArgumentParser parses (and explains) the command line.
/// `SandboxRunFastPathTests` checks both parsers agree on every case.
enum SandboxRunFastPath {
    /// `arguments` is the command line without the program name.
    static func parse(_ arguments: [String]) -> SandboxRunOptions? {
        guard arguments.count >= 2, arguments[0] == "sandbox", arguments[1] == "run" else { return nil }
        var options = SandboxRunOptions()
        var seen: [String] = []
        var index = 2
        while index < arguments.count {
            let word = arguments[index]
            guard word.hasPrefix("--"), word != "--" else { break }
            var name = Substring(word.dropFirst(2))
            var inlineValue: Substring?
            if let equals = name.firstIndex(of: "=") {
                inlineValue = name[name.index(after: equals)...]
                name = name[..<equals]
            }
            let key = String(name)
            guard key == "env" || !seen.contains(key) else { return nil }
            seen.append(key)
            if ["writable-rootfs", "no-cgroup-limits", "json"].contains(key) {
                guard inlineValue == nil else { return nil }
                switch key {
                case "writable-rootfs": options.writableRootfs = true
                case "no-cgroup-limits": options.noCgroupLimits = true
                default: options.json = true
                }
                index += 1
                continue
            }
            let value: String
            if let inlineValue {
                value = String(inlineValue)
                index += 1
            } else {
                guard index + 1 < arguments.count else { return nil }
                value = arguments[index + 1]
                index += 2
            }
            guard !value.isEmpty, !value.hasPrefix("-") else { return nil }
            switch key {
            case "rootfs": options.rootfs = value
            case "image": options.image = value
            case "memory": options.memory = value
            case "cpus": options.cpus = value
            case "pids": options.pids = value
            case "timeout": options.timeout = value
            case "user": options.user = value
            case "env": options.env.append(value)
            case "workdir": options.workdir = value
            case "seccomp": options.seccomp = value
            case "output-limit": options.outputLimit = value
            case "tmp-size": options.tmpSize = value
            case "writable-size": options.writableSize = value
            case "hostname": options.hostname = value
            default: return nil
            }
        }
        // Only with the `--` separator: without it ArgumentParser still takes
        // known options from among the command's words (`sh -c x --json`).
        guard index < arguments.count, arguments[index] == "--" else { return nil }
        options.command = Array(arguments[(index + 1)...])
        return options
    }
}
