import FoundationEssentials

/// The default profile (`profiles/default.json`, embedded at build time),
/// compiled once per process and reused for every sandbox.
public enum DefaultSeccomp {
    private static let compiled: Result<SeccompFilter, SeccompError> = Result { () throws(SeccompError) -> SeccompFilter in
        let profile = try SeccompProfile.parse(Data(PackageResources.default_seccomp_json), path: "profiles/default.json (embedded)")
        return try SeccompCompiler.compile(profile, strict: true).filter
    }

    public static func filter() throws(SeccompError) -> SeccompFilter {
        try compiled.get()
    }
}
